package raftnode

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// DefaultChecksumInterval is the least time between two checksum
// computations on one node while its applied index moves.
const DefaultChecksumInterval = time.Second

// Checksum is a digest of the database's content and the applied index it
// reflects.
type Checksum struct {
	Index  uint64
	SHA256 string
	// At is when the computation that produced it finished.
	At time.Time
}

// ChecksumCache owns a node's checksum. A checksum hashes the whole
// database, so it is computed at most once per applied index, concurrent
// callers share one computation, and while the index moves a new one starts
// only once the gap since the last one ended is at least the interval (or
// the last computation's duration, if longer: checksums then use at most
// half of one core, however large the database). Callers in between get the
// cached sum with the index it reflects, which may be behind the node's.
type ChecksumCache struct {
	compute  func(context.Context) (sqlitedb.Position, string, error)
	applied  func() uint64
	interval time.Duration

	flights      singleflight.Group
	computations atomic.Uint64

	mu      sync.Mutex
	last    Checksum
	lastDur time.Duration // how long computing last took
	have    bool
}

// NewChecksumCache caches compute's results; applied reports the index the
// database has applied now, interval is the least gap between computations
// (DefaultChecksumInterval when zero).
func NewChecksumCache(compute func(context.Context) (sqlitedb.Position, string, error), applied func() uint64,
	interval time.Duration) *ChecksumCache {
	if interval <= 0 {
		interval = DefaultChecksumInterval
	}
	return &ChecksumCache{compute: compute, applied: applied, interval: interval}
}

// Get returns the cached checksum when it is current (its index is the
// applied one) or recent, and otherwise computes one, sharing the
// computation with concurrent callers. The computation does not stop when
// ctx ends: the callers it serves have contexts of their own, and its
// result is cached for the next.
func (c *ChecksumCache) Get(ctx context.Context) (Checksum, error) {
	if sum, ok := c.cached(); ok {
		return sum, nil
	}
	ch := c.flights.DoChan("checksum", func() (any, error) {
		if sum, ok := c.cached(); ok { // a flight ended between our check and this one
			return sum, nil
		}
		return c.refresh()
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Checksum{}, res.Err
		}
		return res.Val.(Checksum), nil
	case <-ctx.Done():
		return Checksum{}, ctx.Err()
	}
}

// Computations is how many checksums have been computed (tests use it).
func (c *ChecksumCache) Computations() uint64 { return c.computations.Load() }

// cached returns the last checksum when it is still good to hand out.
func (c *ChecksumCache) cached() (Checksum, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.have {
		return Checksum{}, false
	}
	// A checksum may reflect an index a moment before the FSM reports it
	// applied (it is read inside the transaction): >= covers that.
	if c.last.Index >= c.applied() || time.Since(c.last.At) < max(c.interval, c.lastDur) {
		return c.last, true
	}
	return Checksum{}, false
}

// refresh computes a checksum and caches it. Only one runs at a time (the
// singleflight group), so results are stored in the order they were taken.
func (c *ChecksumCache) refresh() (Checksum, error) {
	start := time.Now()
	pos, sum, err := c.compute(context.Background())
	c.computations.Add(1)
	if err != nil {
		return Checksum{}, err
	}
	out := Checksum{Index: pos.Index, SHA256: sum, At: time.Now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.lastDur, c.have = out, out.At.Sub(start), true
	return out, nil
}

// Checksum digests the database's content (see sqlitedb.DB.Checksum),
// through the node's cache: the result may reflect an index behind the
// node's applied one, and says which.
func (n *Node) Checksum(ctx context.Context) (Checksum, error) { return n.checksums.Get(ctx) }
