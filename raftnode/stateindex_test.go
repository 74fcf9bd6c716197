package raftnode

import "testing"

// TestStateIndexMemo: an answer is computed once per index and kept; a new
// index is computed again; an answer marked not to keep is not reused.
func TestStateIndexMemo(t *testing.T) {
	var m stateIndexMemo
	calls := 0
	compute := func(ans uint64, keep bool) func() (uint64, bool) {
		return func() (uint64, bool) { calls++; return ans, keep }
	}
	if got := m.get(10, compute(8, true)); got != 8 || calls != 1 {
		t.Fatalf("first: %d after %d calls", got, calls)
	}
	if got := m.get(10, compute(99, true)); got != 8 || calls != 1 {
		t.Fatalf("same index: %d after %d calls, want the kept 8 without computing", got, calls)
	}
	if got := m.get(12, compute(0, false)); got != 0 || calls != 2 {
		t.Fatalf("unknown: %d after %d calls", got, calls)
	}
	if got := m.get(12, compute(11, true)); got != 11 || calls != 3 {
		t.Fatalf("after an unkept answer: %d after %d calls, want 11 computed again", got, calls)
	}
}
