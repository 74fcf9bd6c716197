package snapshot

import (
	"fmt"
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
}

// Stats is the store's state for ClusterService.Status.
type Stats struct {
	// Snapshots on disk, newest first.
	Snapshots []Info
	// LeasesHeld is the number of readers holding a lease now.
	LeasesHeld int
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
	in := Info{ID: m.ID, Kind: m.Kind, Index: m.Index, Term: m.Term}
	for _, f := range m.Files {
		in.Size += f.Size
	}
	return in
}

// Stats returns the store's current state.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{LeasesHeld: s.leases.Held(), LeaseWaits: s.leases.Waits(), LastError: s.lastErr,
		LastSnapshotIndex: s.lastIdx, NextFull: s.needFull, Created: s.created, Superseded: s.superseded, Consolidations: s.consols,
		LastConsolidation: s.consolAt}
	for _, m := range s.sortedLocked() {
		st.Snapshots = append(st.Snapshots, infoOf(m))
	}
	return st
}

// Latest describes the newest snapshot; ok is false if there is none.
func (s *Store) Latest() (info Info, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.snaps[s.head]
	if !found {
		return Info{}, false
	}
	return infoOf(m), true
}

// Info describes snapshot id.
func (s *Store) Info(id string) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.snaps[id]
	if !ok {
		return Info{}, fmt.Errorf("snapshot %s: not found", id)
	}
	return infoOf(m), nil
}
