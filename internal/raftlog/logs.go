package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// FirstIndex implements raft.LogStore: the first index in the log, 0 if it
// is empty.
func (s *Store) FirstIndex() (uint64, error) {
	var first uint64
	_, err := s.withWAL(func(w *raftwal.WAL) (err error) {
		first, err = w.FirstIndex()
		return err
	})
	return first, err
}

// LastIndex implements raft.LogStore: the last index in the log, 0 if it is
// empty.
func (s *Store) LastIndex() (uint64, error) {
	var last uint64
	_, err := s.withWAL(func(w *raftwal.WAL) (err error) {
		last, err = w.LastIndex()
		return err
	})
	return last, err
}

// GetLog implements raft.LogStore. Entries below FirstIndex are gone
// (raft.ErrLogNotFound): raft-wal v0.4.0 keeps returning them after a head
// truncation while they sit in the current segment, and Raft would then
// feed a lagging follower old entries instead of the snapshot it needs.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	_, err := s.withWAL(func(w *raftwal.WAL) error {
		first, err := w.FirstIndex()
		if err != nil {
			return err
		}
		if index < first {
			return raft.ErrLogNotFound
		}
		return w.GetLog(index, log)
	})
	return err
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore. When it fails it has stored none of
// logs: the WAL is reopened and whatever part of the batch reached the disk
// is dropped, so the caller's retry (Raft retries an append its log could
// not store) finds the log as it was. The error is the append's, with the
// recovery's if that failed too.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	var before uint64
	w, err := s.withWAL(func(w *raftwal.WAL) (err error) {
		if before, err = w.LastIndex(); err != nil {
			return err
		}
		return w.StoreLogs(logs)
	})
	if err == nil || w == nil {
		return err
	}
	// Keep what preceded the batch: the log's last entry before the call, or
	// the entry before the batch when the log was empty (after a snapshot
	// install the batch starts past an empty log).
	keep := max(before, logs[0].Index-1)
	err = fmt.Errorf("store log entries %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	if rerr := s.recover(w, keep); rerr != nil {
		s.log.Error("raft log append failed and the log could not be reopened", "error", err, "reopen_error", rerr)
		return fmt.Errorf("%w; then: %w", err, rerr)
	}
	s.log.Warn("raft log append failed; log reopened, the append stored nothing", "error", err)
	return err
}

// DeleteRange implements raft.LogStore: it deletes the entries min to max
// (inclusive), a prefix or a suffix of the log. It excludes every other use
// of the store while it runs, and first lets a pending segment rotation
// finish: raft-wal v0.4.0 rotates in the background and, when a deletion
// replaces the tail segment first, the rotation seals the new tail instead
// and corrupts the log's metadata. When raft-wal fails part way, the WAL is
// reopened: if the deletion reached the disk (raft-wal commits it to its
// metadata before creating the next segment file) the range is gone and
// DeleteRange succeeds, logging the error; otherwise it returns the error
// with the entries still there.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.healLocked(); err != nil {
		return err
	}
	if err := s.settleRotationLocked(); err != nil {
		return err
	}
	w := s.wal
	err := w.DeleteRange(min, max)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("delete log entries %d-%d: %w", min, max, err)
	if rerr := s.recoverLocked(w, keepAll); rerr != nil {
		return fmt.Errorf("%w; then: %w", err, rerr)
	}
	first, ferr := s.wal.FirstIndex()
	last, lerr := s.wal.LastIndex()
	if ferr != nil || lerr != nil {
		return fmt.Errorf("%w; then: %w", err, errors.Join(ferr, lerr))
	}
	if first == 0 || max < first || min > last {
		s.log.Warn("raft log deletion reported an error but is on disk; log reopened", "error", err)
		return nil
	}
	return err
}

// settleRotationLocked makes sure no segment rotation is pending. When the
// tail is sealed the rotation normally completes within microseconds in
// raft-wal's goroutine (which does not need mu); if it has not after a
// short wait (or failed), the WAL is closed (a rotation either completed
// before or never starts) and reopened, which completes the rotation
// (openWAL). mu is held exclusively, so no append can seal the tail
// meanwhile.
func (s *Store) settleRotationLocked() error {
	for i := 0; s.filer.tailSealed(); i++ {
		if i < 50 {
			time.Sleep(time.Millisecond)
			continue
		}
		s.closeWALLocked()
		if err := s.healLocked(); err != nil {
			return fmt.Errorf("settle a segment rotation: %w", err)
		}
		return nil
	}
	return nil
}

// IsMonotonic implements raft.MonotonicLogStore: the log has no gaps, so
// Raft removes all entries after installing a snapshot.
func (s *Store) IsMonotonic() bool { return true }

// Set implements raft.StableStore.
func (s *Store) Set(key, val []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.meta.SetStable(key, val)
}

// Get implements raft.StableStore; a missing key is nil and no error.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.meta.GetStable(key)
}

// SetUint64 implements raft.StableStore, encoding as raft-wal does (8 bytes,
// little-endian), so existing data directories read the same.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.LittleEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore; a missing key is 0.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	raw, err := s.Get(key)
	if err != nil || len(raw) == 0 {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("stable store key %q holds %d bytes, not a uint64", key, len(raw))
	}
	return binary.LittleEndian.Uint64(raw), nil
}
