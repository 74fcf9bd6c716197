package msglimit

import "testing"

func TestBatchOfLargestEntriesFitsRaftMessage(t *testing.T) {
	for _, bytes := range []int{0, Minimum, 4 << 20, Default, 64 << 20, 512 << 20} {
		l, err := New(bytes)
		if err != nil {
			t.Fatal(err)
		}
		n := l.MaxAppendEntries()
		if n < 1 || n > maxBatch {
			t.Fatalf("%d: MaxAppendEntries %d", bytes, n)
		}
		if int64(n)*int64(l.EntryBytes())+envelope > int64(l.RaftBytes()) {
			t.Errorf("%d: %d entries of %d bytes exceed the Raft limit %d", bytes, n, l.EntryBytes(), l.RaftBytes())
		}
		if l.EntryBytes() <= l.Bytes() || l.ResponseBytes() <= l.ResultBytes() {
			t.Errorf("%d: entry %d, result %d", bytes, l.EntryBytes(), l.ResultBytes())
		}
	}
	if _, err := New(Minimum - 1); err == nil {
		t.Error("a limit below the minimum was accepted")
	}
}
