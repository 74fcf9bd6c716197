package raftlog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("raft log store is closed")

// keepAll is Store.keepThrough when no entries are to be dropped.
const keepAll = math.MaxUint64

// Options configure a Store; the zero value is the production setting.
type Options struct {
	// Logger receives raft-wal's messages and the store's recoveries; nil
	// means hclog's default logger.
	Logger hclog.Logger
	// SegmentSize is the size at which a segment file is sealed and the next
	// one started; 0 means raft-wal's default (64 MiB).
	SegmentSize int

	// wrapVFS and wrapMeta let tests put a fault-injecting file system or
	// meta store between raft-wal and the real ones.
	wrapVFS  func(types.VFS) types.VFS
	wrapMeta func(types.MetaStore) types.MetaStore
}

// Store is the Raft log store and stable store: a raft-wal WAL in one
// directory (see the package comment). It implements raft.LogStore,
// raft.MonotonicLogStore and raft.StableStore, and is safe for concurrent
// use.
type Store struct {
	dir  string
	opts Options
	log  hclog.Logger
	vfs  types.VFS
	meta *metaStore      // owned here: raft-wal's Close leaves it open
	wm   types.MetaStore // meta as raft-wal sees it (wrapped in tests)

	// mu is held shared by every use of wal (raft-wal serializes its writers
	// itself) but deletions, and exclusively to delete or replace it.
	mu    sync.RWMutex
	wal   *raftwal.WAL // nil after a failure until a reopen succeeds
	filer *filer       // wal's
	// keepThrough is, while a recovery is pending, the last index to keep:
	// the reopened log drops what a failed append left after it.
	keepThrough uint64
	closed      bool
}

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
	_ raft.StableStore       = (*Store)(nil)
)

// Open opens the Raft log in dir, creating dir and an empty log if needed.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = raftwal.DefaultSegmentSize
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, keepThrough: keepAll,
		vfs: newVFS(dirSyncPolicy), meta: &metaStore{BoltMetaDB: &metadb.BoltMetaDB{}, syncDir: dirSyncPolicy}}
	if s.log == nil {
		s.log = hclog.Default().Named("raftlog")
	}
	s.wm = s.meta
	if opts.wrapVFS != nil {
		s.vfs = opts.wrapVFS(s.vfs)
	}
	if opts.wrapMeta != nil {
		s.wm = opts.wrapMeta(s.meta)
	}
	if err := s.openWAL(); err != nil {
		return nil, errors.Join(err, s.meta.Close())
	}
	return s, nil
}

// openWAL opens raft-wal on the store's directory. When raft-wal recovers a
// tail segment that was sealed in its file but not yet in the metadata (it
// was closed or crashed between the two), it would refuse every append
// (ErrSealed); openWAL completes the rotation in the metadata and opens
// again (repair.go). mu is held exclusively, or not yet shared.
func (s *Store) openWAL() error {
	for attempt := 0; ; attempt++ {
		f := &filer{Filer: segment.NewFiler(s.dir, s.vfs)}
		w, err := raftwal.Open(s.dir, raftwal.WithMetaStore(s.wm), raftwal.WithSegmentFiler(f),
			raftwal.WithLogger(s.log.Named("wal")), raftwal.WithSegmentSize(s.opts.SegmentSize))
		if err != nil {
			return fmt.Errorf("open raft log: %w", err)
		}
		if f.sealedTail == nil {
			s.wal, s.filer = w, f
			return nil
		}
		if err := w.Close(); err != nil {
			return err
		}
		if attempt > 0 {
			return fmt.Errorf("open raft log: tail segment %d still sealed after completing its rotation", f.sealedTail.ID)
		}
		s.log.Warn("completing the rotation of a tail segment sealed before a crash or failure",
			"segment", f.sealedTail.ID, "last_index", f.sealedTail.MaxIndex)
		if err := s.completeRotation(*f.sealedTail); err != nil {
			return fmt.Errorf("open raft log: %w", err)
		}
	}
}

// Close closes the log and its meta database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.wal != nil {
		err = s.wal.Close()
		s.wal, s.filer = nil, nil
	}
	return errors.Join(err, s.meta.Close())
}

// withWAL runs fn on the open WAL under the shared lock, reopening the WAL
// first if a failure closed it. It returns the WAL fn ran on, for recover.
func (s *Store) withWAL(fn func(*raftwal.WAL) error) (*raftwal.WAL, error) {
	for {
		s.mu.RLock()
		if w := s.wal; w != nil {
			err := fn(w)
			s.mu.RUnlock()
			return w, err
		}
		s.mu.RUnlock()
		s.mu.Lock()
		err := s.healLocked()
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// recover replaces the WAL an operation failed on (unless another caller
// already did) by a reopened one, from which the entries after keepThrough
// are dropped.
func (s *Store) recover(failed *raftwal.WAL, keepThrough uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recoverLocked(failed, keepThrough)
}

// recoverLocked is recover with mu held exclusively.
func (s *Store) recoverLocked(failed *raftwal.WAL, keepThrough uint64) error {
	if s.wal == failed && failed != nil {
		s.closeWALLocked()
	}
	s.keepThrough = min(s.keepThrough, keepThrough)
	return s.healLocked()
}

// closeWALLocked closes the WAL (after a failure: the error is logged, the
// failure is what matters); mu is held exclusively.
func (s *Store) closeWALLocked() {
	if err := s.wal.Close(); err != nil {
		s.log.Warn("closing the raft log", "error", err)
	}
	s.wal, s.filer = nil, nil
}

// healLocked reopens the WAL if a failure closed it and drops the entries a
// failed append left; mu is held exclusively.
func (s *Store) healLocked() error {
	if s.closed {
		return ErrClosed
	}
	if s.wal == nil {
		if err := s.openWAL(); err != nil {
			return fmt.Errorf("reopen after a failure: %w", err)
		}
	}
	if s.keepThrough == keepAll {
		return nil
	}
	last, err := s.wal.LastIndex()
	if err == nil && last > s.keepThrough {
		err = s.wal.DeleteRange(s.keepThrough+1, last)
	}
	if err != nil {
		s.closeWALLocked()
		return fmt.Errorf("drop the entries of a failed append after index %d: %w", s.keepThrough, err)
	}
	s.keepThrough = keepAll
	return nil
}
