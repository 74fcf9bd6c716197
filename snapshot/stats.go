package snapshot

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Info describes one snapshot on disk.
type Info struct {
	ID    string
	Kind  Kind
	Index uint64
	Term  uint64
	// Size is the bytes of this snapshot's own files (for an incremental,
	// its WAL frames only).
	Size int64
	// InLiveDB says the snapshot's files became the live database (an
	// install moved them there): it cannot be opened until a new snapshot,
	// which must be full, replaces it.
	InLiveDB bool
}

// Stats is the store's state for ClusterService.Status.
type Stats struct {
	// Snapshots on disk, newest first.
	Snapshots []Info
	// LeasesHeld is the number of readers holding a lease now.
	LeasesHeld int
	// Offers is the number of snapshots offered to other nodes for a pull
	// and not ended yet (one per Raft InstallSnapshot call in progress).
	Offers int
	// LeaseWaits counts operations that had to wait for a lease.
	LeaseWaits uint64
	// LastError is the last snapshot error, cleared by the next success.
	LastError string
	// LastSnapshotIndex is the Raft index of the latest snapshot.
	LastSnapshotIndex uint64
	// NextFull, when non-empty, says why the next snapshot will be full.
	NextFull string
	// Created counts snapshots stored since start (persisted or received).
	Created uint64
	// Superseded counts captures not stored because a snapshot was
	// received or installed between their capture and Persist (not errors).
	Superseded uint64
	// Consolidations counts completed consolidations since start, and
	// LastConsolidation is when the latest one finished.
	Consolidations    uint64
	LastConsolidation time.Time
}

func infoOf(m *snapMeta) Info {
	in := Info{ID: m.ID, Kind: m.Kind, Index: m.Index, Term: m.Term, InLiveDB: m.InLiveDB || m.AdoptPath != ""}
	for _, f := range m.Files {
		in.Size += f.Size
	}
	return in
}

// leaseCounter is what the Store reports of its LeaseManager in Stats.
type leaseCounter interface {
	Held() int
	Waits() uint64
}

// lastError is the last snapshot error, shared by the parts of a Store:
// each records its failures, a successful Persist clears it, and Stats
// reports it. Its mu guards msg.
type lastError struct {
	log *slog.Logger

	mu  sync.Mutex
	msg string
}

// set records err and logs it.
func (e *lastError) set(err error) {
	e.mu.Lock()
	e.msg = err.Error()
	e.mu.Unlock()
	e.log.Error("snapshot error", "error", err)
}

// clear forgets the last error (a snapshot succeeded).
func (e *lastError) clear() {
	e.mu.Lock()
	e.msg = ""
	e.mu.Unlock()
}

// get returns the last error's text, or "".
func (e *lastError) get() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.msg
}

// Stats returns the store's current state. Each part reports its own
// fields under its own lock, so fields from different parts may describe
// slightly different moments.
func (s *Store) Stats() Stats {
	st := s.catalog.stats()
	st.NextFull, st.Superseded = s.capture.stats()
	st.LeasesHeld, st.LeaseWaits = s.leases.Held(), s.leases.Waits()
	st.Offers = s.catalog.offers.count()
	st.LastError = s.errs.get()
	return st
}

// stats reports the catalogue's part of Stats: the snapshots and the
// counters of creation and consolidation.
func (c *Catalog) stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{LastSnapshotIndex: c.lastIdx, Created: c.created, Consolidations: c.consols,
		LastConsolidation: c.consolAt}
	for _, m := range c.sortedLocked() {
		st.Snapshots = append(st.Snapshots, infoOf(m))
	}
	return st
}

// Latest describes the newest snapshot; ok is false if there is none.
func (s *Store) Latest() (info Info, ok bool) { return s.catalog.Latest() }

// Info describes snapshot id.
func (s *Store) Info(id string) (Info, error) { return s.catalog.Info(id) }

// Latest describes the newest snapshot; ok is false if there is none.
func (c *Catalog) Latest() (info Info, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, found := c.snaps[c.head]
	if !found {
		return Info{}, false
	}
	return infoOf(m), true
}

// Info describes snapshot id.
func (c *Catalog) Info(id string) (Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.snaps[id]
	if !ok {
		return Info{}, fmt.Errorf("snapshot %s: not found", id)
	}
	return infoOf(m), nil
}
