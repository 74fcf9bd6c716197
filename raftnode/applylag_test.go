package raftnode

import (
	"testing"
	"time"
)

func TestApplyLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a := newApplyLag(time.Second)
	applied := uint64(0)
	reached := func(i uint64) bool { return applied >= i }

	if a.check(at(0), 0, 5, reached) {
		t.Fatal("a node that never caught up is not current")
	}
	applied = 5
	if !a.check(at(100*time.Millisecond), applied, 5, reached) {
		t.Fatal("caught up: current")
	}
	// Behind but advancing: each target is reached soon after it was set.
	for i := 1; i <= 50; i++ {
		now := at(time.Duration(100+i*200) * time.Millisecond)
		commit := uint64(5 + i*10)
		applied = commit - 3 // always a little behind
		if !a.check(now, applied, commit, reached) {
			t.Fatalf("sample %d: a node that keeps up within the bound is current", i)
		}
	}
	// Stuck: applied stops while commit moves on.
	stuckAt := at(10500 * time.Millisecond)
	var flipped time.Duration = -1
	for d := time.Duration(0); d < 3*time.Second; d += 200 * time.Millisecond {
		if !a.check(stuckAt.Add(d), applied, applied+uint64(d/time.Millisecond), reached) && flipped < 0 {
			flipped = d
		}
	}
	if flipped < 0 || flipped > 1500*time.Millisecond {
		t.Fatalf("a stuck FSM must stop being current about a bound after it stopped; flipped after %v", flipped)
	}
	// Unstuck: current again at once.
	applied = 10_000
	if !a.check(stuckAt.Add(4*time.Second), applied, applied, reached) {
		t.Fatal("caught up again: current")
	}
}
