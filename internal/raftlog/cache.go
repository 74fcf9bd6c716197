package raftlog

import (
	"sync"

	"github.com/hashicorp/raft"
)

// Cache keeps the newest log entries in memory in front of a raft.LogStore,
// so that the reads Raft makes right after an append — the leader
// replicating the entries it just stored, a follower applying the entries it
// just received, the read path looking up the last entry — cost no system
// call. It is bounded in bytes as well as in entries: hashicorp/raft's own
// LogCache is bounded only by count, and with entries of up to several MiB
// (one large write) a count that helps small writes would hold hundreds of
// MiB.
//
// The cache holds a contiguous run of indexes. An append that does not
// follow the run starts a new one; DeleteRange empties it.
type Cache struct {
	store    raft.LogStore
	maxBytes int
	maxCount int

	mu      sync.RWMutex
	entries []*raft.Log // contiguous indexes, oldest first
	bytes   int
}

// entryOverhead approximates what one cached entry costs besides its data.
const entryOverhead = 128

// NewCache puts a cache of at most maxCount entries and maxBytes bytes in
// front of store.
func NewCache(store raft.LogStore, maxCount, maxBytes int) *Cache {
	return &Cache{store: store, maxCount: maxCount, maxBytes: maxBytes}
}

func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) + entryOverhead }

// GetLog implements raft.LogStore.
func (c *Cache) GetLog(index uint64, log *raft.Log) error {
	c.mu.RLock()
	if n := len(c.entries); n > 0 {
		first := c.entries[0].Index
		if index >= first && index-first < uint64(n) {
			*log = *c.entries[index-first]
			c.mu.RUnlock()
			return nil
		}
	}
	c.mu.RUnlock()
	return c.store.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (c *Cache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: the entries are cached once the store
// has them.
// The store writes (and syncs) without the cache's lock held, so reads of
// cached entries go on meanwhile.
func (c *Cache) StoreLogs(logs []*raft.Log) error {
	err := c.store.StoreLogs(logs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.reset()
		return err
	}
	for _, l := range logs {
		c.add(l)
	}
	return nil
}

// add appends l, starting a new run when it does not follow the cached one,
// and evicts the oldest entries beyond the bounds.
func (c *Cache) add(l *raft.Log) {
	if n := len(c.entries); n > 0 && c.entries[n-1].Index+1 != l.Index {
		c.reset()
	}
	size := entrySize(l)
	if size > c.maxBytes {
		c.reset()
		return
	}
	c.entries = append(c.entries, l)
	c.bytes += size
	drop := 0
	for c.bytes > c.maxBytes || len(c.entries)-drop > c.maxCount {
		c.bytes -= entrySize(c.entries[drop])
		c.entries[drop] = nil
		drop++
	}
	c.entries = c.entries[drop:] // append moves the live part to a new array when this one is full
}

func (c *Cache) reset() {
	c.entries, c.bytes = nil, 0
}

// FirstIndex implements raft.LogStore.
func (c *Cache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

// LastIndex implements raft.LogStore.
func (c *Cache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange implements raft.LogStore; it empties the cache.
func (c *Cache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	return c.store.DeleteRange(min, max)
}

// IsMonotonic implements raft.MonotonicLogStore when the store does.
func (c *Cache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
