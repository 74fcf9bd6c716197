package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/snapshot"
)

// Status is a snapshot of the node's Raft state.
type Status struct {
	ID            string
	State         string
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64
	LastLogIndex  uint64
	FirstLogIndex uint64
	RaftAddress   string
	GRPCAddress   string
	LastContact   time.Duration
	DBSize        int64
	// LinearizableReads and ReadIndexRounds count linearizable reads and the
	// leadership confirmation rounds they shared, since start.
	LinearizableReads uint64
	ReadIndexRounds   uint64
	// LeaseReads counts the linearizable reads served under the read
	// lease (no round of their own; included in LinearizableReads), and
	// LeaseRenewals the rounds that renewed it, since start.
	LeaseReads, LeaseRenewals uint64
	// AppliedEntries and ApplyTransactions count entries applied and the
	// SQLite transactions they shared, since start.
	AppliedEntries, ApplyTransactions uint64
	// Streams is the number of QueryStream calls (and checksums) running
	// on this node's database now, each on a connection of its own.
	Streams int
}

// Status reports the node's state. It reads memory only: the database
// size comes from the storage stats cache, at most StorageStatsMaxAge old;
// the first log index is the log store's in-memory value, read fresh so
// that a snapshot's log truncation shows at once (the cached value stands in
// only when the log store is closed or cannot be reopened after a failure).
func (n *Node) Status() Status {
	dbSize, first := n.storage.get()
	if fresh, err := n.logStore.FirstIndex(); err == nil {
		first = fresh
	}
	st := Status{
		ID: n.cfg.ID, State: n.raft.State().String(), Term: n.term(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.Applied(), LastLogIndex: n.raft.LastIndex(),
		FirstLogIndex: first, RaftAddress: n.cfg.RaftAdvertise, GRPCAddress: n.cfg.GRPCAdvertise,
		DBSize: dbSize, LinearizableReads: n.reads.reads.Load(), ReadIndexRounds: n.reads.confirmations.Load(),
		Streams: n.db.Streams(),
	}
	st.AppliedEntries, st.ApplyTransactions = n.fsm.Batching()
	if n.lease != nil {
		st.LeaseReads, st.LeaseRenewals = n.lease.hits.Load(), n.lease.renewals.Load()
		st.LinearizableReads += st.LeaseReads
	}
	if lc := n.raft.LastContact(); !lc.IsZero() {
		st.LastContact = time.Since(lc)
	}
	return st
}

// Term is the node's current Raft term.
func (n *Node) Term() uint64 { return n.term() }

// Snapshot takes a Raft snapshot now and describes it.
func (n *Node) Snapshot() (SnapshotInfo, error) {
	if err := n.raft.Snapshot().Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return snapshot.Info{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return snapshot.Info{}, err
	}
	info, ok := n.snapshots.Latest()
	if !ok {
		return snapshot.Info{}, errors.New("snapshot taken but not listed")
	}
	return info, nil
}

// Snapshots is the node's snapshot store.
func (n *Node) Snapshots() SnapshotStore { return n.snapshots }

// SnapshotInfo describes one snapshot on disk.
type SnapshotInfo = snapshot.Info

// SnapshotStats describes the snapshot store: its snapshots, leases and
// last error.
type SnapshotStats = snapshot.Stats

// SnapshotKind says whether a snapshot holds the whole database or the WAL
// frames since its parent.
type SnapshotKind = snapshot.Kind

// Snapshot kinds.
const (
	SnapshotFull        = snapshot.KindFull
	SnapshotIncremental = snapshot.KindIncremental
)

// SnapshotStats describes the node's snapshot store for Status.
func (n *Node) SnapshotStats() SnapshotStats { return n.snapshots.Stats() }

// Applied is the index of the last entry the database holds.
func (n *Node) Applied() uint64 { return n.fsm.Applied() }

// NodeAddress is the gRPC address node id published to the cluster (the
// replicated node table), or "" if it has published none.
func (n *Node) NodeAddress(id string) string { return n.fsm.NodeAddress(id) }

// StorageStatsMaxAge is how old the database size and first log index in
// Status may be.
const StorageStatsMaxAge = time.Second

// storageStats caches what Status would otherwise read from storage on
// every call: the database file's size (a stat) and the log's first index.
// A call that finds them older than maxAge starts one refresh in the
// background and returns the values it has, so Status never waits on a disk
// and polling it costs at most one refresh per maxAge.
type storageStats struct {
	dbSize     func() int64
	firstIndex func() (uint64, error)
	maxAge     time.Duration

	refreshing atomic.Bool   // a refresh is running
	refreshes  atomic.Uint64 // refreshes done, for tests

	mu    sync.Mutex
	size  int64
	first uint64
	at    time.Time
}

// newStorageStats reads the values once, so the first Status has them.
func newStorageStats(dbSize func() int64, firstIndex func() (uint64, error), maxAge time.Duration) *storageStats {
	s := &storageStats{dbSize: dbSize, firstIndex: firstIndex, maxAge: maxAge}
	s.refreshing.Store(true)
	s.refresh()
	return s
}

// get returns the cached values, starting a refresh when they are old.
func (s *storageStats) get() (dbSize int64, firstIndex uint64) {
	s.mu.Lock()
	dbSize, firstIndex, stale := s.size, s.first, time.Since(s.at) >= s.maxAge
	s.mu.Unlock()
	if stale && s.refreshing.CompareAndSwap(false, true) {
		go s.refresh()
	}
	return dbSize, firstIndex
}

// refresh reads the values and ends the refresh the caller started. A log
// store that fails (closed) keeps the last first index.
func (s *storageStats) refresh() {
	defer s.refreshing.Store(false)
	size := s.dbSize()
	first, err := s.firstIndex()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size, s.at = size, time.Now()
	if err == nil {
		s.first = first
	}
	s.refreshes.Add(1)
}
