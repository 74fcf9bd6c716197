package raftlog

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// countingStore is an in-memory raft.LogStore that counts GetLog calls.
type countingStore struct {
	*raft.InmemStore
	gets int
}

func (s *countingStore) GetLog(i uint64, l *raft.Log) error {
	s.gets++
	return s.InmemStore.GetLog(i, l)
}

func cacheEntries(from, to uint64, size int) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, size)})
	}
	return out
}

func TestCacheServesNewestEntries(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c := NewCache(store, 10, 1<<20)
	if err := c.StoreLogs(cacheEntries(1, 30, 10)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for i := uint64(21); i <= 30; i++ {
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("entry %d: %v %v", i, l.Index, err)
		}
	}
	if store.gets != 0 {
		t.Errorf("the newest 10 entries took %d store reads, want 0", store.gets)
	}
	if err := c.GetLog(20, &l); err != nil || l.Index != 20 || store.gets != 1 {
		t.Errorf("entry 20 (evicted): index %d, err %v, store reads %d", l.Index, err, store.gets)
	}
}

func TestCacheBoundedInBytes(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c := NewCache(store, 1000, 10*(1000+entryOverhead))
	if err := c.StoreLogs(cacheEntries(1, 100, 1000)); err != nil {
		t.Fatal(err)
	}
	if len(c.entries) != 10 || c.bytes > c.maxBytes || c.entries[0].Index != 91 {
		t.Fatalf("cache holds %d entries (%d bytes) from %d; want the newest 10", len(c.entries), c.bytes, c.entries[0].Index)
	}
	// One entry larger than the whole cache is stored, not cached.
	if err := c.StoreLogs(cacheEntries(101, 101, 1<<20)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(101, &l); err != nil || len(l.Data) != 1<<20 || len(c.entries) != 0 {
		t.Fatalf("large entry: %v, %d cached", err, len(c.entries))
	}
}

// After a truncation (a follower's log conflicting with the leader's), the
// cache never serves an entry the store replaced.
func TestCacheFollowsTruncation(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c := NewCache(store, 100, 1<<20)
	if err := c.StoreLogs(cacheEntries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	replaced := cacheEntries(6, 8, 2)
	for _, l := range replaced {
		l.Term = 2
	}
	if err := c.StoreLogs(replaced); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for i := uint64(1); i <= 8; i++ {
		want := uint64(1)
		if i >= 6 {
			want = 2
		}
		if err := c.GetLog(i, &l); err != nil || l.Term != want {
			t.Fatalf("entry %d: term %d err %v, want term %d", i, l.Term, err, want)
		}
	}
	if err := c.GetLog(9, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("entry 9 after truncation: %v", err)
	}
	if c.IsMonotonic() || !NewCache(&Store{}, 1, 1).IsMonotonic() {
		t.Errorf("IsMonotonic does not pass the store's through")
	}
}

// A failed append leaves nothing cached that the store may not hold.
func TestCacheForgetsFailedAppend(t *testing.T) {
	c := NewCache(failingStore{raft.NewInmemStore()}, 100, 1<<20)
	if err := c.StoreLogs(cacheEntries(1, 3, 1)); err == nil {
		t.Fatal("append did not fail")
	}
	if len(c.entries) != 0 {
		t.Fatalf("cache holds %d entries of a failed append", len(c.entries))
	}
}

type failingStore struct{ *raft.InmemStore }

func (failingStore) StoreLogs([]*raft.Log) error { return errors.New("disk full") }
