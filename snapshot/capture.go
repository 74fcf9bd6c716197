package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// liveStat identifies the live database file as the last complete
// checkpoint left it; if it changed since (a connection close checkpointed
// into it, a Replace swapped it), the WAL no longer continues the chain.
type liveStat struct {
	path string
	size int64
	mod  time.Time
}

func statLive(path string) (liveStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return liveStat{}, err
	}
	return liveStat{path: path, size: fi.Size(), mod: fi.ModTime()}, nil
}

var captureSeq atomic.Uint64

// Capture takes the FSM's side of a snapshot of db. Call it from
// FSM.Snapshot, on the FSM goroutine, so no write runs concurrently. The
// snapshot is incremental (the WAL frames written since the store's latest
// snapshot, then a checkpoint) unless fullRequired is set or the store
// needs a full one: first snapshot since start, after an incomplete
// checkpoint, a failed or abandoned Persist, a Restore, or any change of
// the live file outside the chain. A full capture checkpoints the
// database; Persist then copies the file while writes go on into the WAL.
// Nothing here waits for Install or Replace, which matters: Raft's
// follower blocks its main loop on FSM.Restore while its snapshot
// goroutine, between FSM.Snapshot and Persist, waits for that main loop.
//
// The database must run with AutoCheckpoint < 0. The returned
// FSMSnapshot's Persist only accepts sinks of this store.
func (s *Store) Capture(db *sqlitedb.DB, fullRequired bool) (raft.FSMSnapshot, error) {
	s.mu.Lock()
	if s.pending {
		s.mu.Unlock()
		return nil, errors.New("snapshot: previous snapshot not yet released")
	}
	full, why := fullRequired, "requested"
	if !full {
		full, why = s.needFullLocked(db)
	}
	parent, installs := s.head, s.installs
	s.pending = true
	s.mu.Unlock()

	f := &fsmSnapshot{s: s, db: db, parent: parent, kind: KindIncremental, installs: installs}
	var err error
	if !full {
		err = s.captureIncremental(f)
		if errors.Is(err, errIncrementalTooLarge) {
			full, why = true, err.Error()
		}
	}
	if full {
		f.kind = KindFull
		err = s.captureFull(f)
	}
	if err != nil {
		f.cleanup()
		s.mu.Lock()
		s.pending = false
		s.requireFullLocked("capture failed")
		s.mu.Unlock()
		s.setErr(fmt.Errorf("capture: %w", err))
		return nil, err
	}
	s.log.Debug("snapshot captured", "kind", f.kind, "reason", why, "wal_bytes", f.wal.Size, "db_bytes", f.dbSize)
	return f, nil
}

// needFullLocked decides whether the next capture must be full.
func (s *Store) needFullLocked(db *sqlitedb.DB) (bool, string) {
	if s.needFull != "" {
		return true, s.needFull
	}
	if s.head == "" {
		return true, "no snapshot yet"
	}
	st, err := statLive(db.Path())
	if err != nil || st != s.live {
		return true, "live database file changed outside the snapshot chain"
	}
	return false, ""
}

// errIncrementalTooLarge: the pages written since the last snapshot take
// at least half as many bytes as the whole database, so a full snapshot is
// taken instead: it costs at most twice as much to write, and it ends the
// chain instead of making it as large again as the database.
var errIncrementalTooLarge = errors.New("incremental would be at least half the database")

// incrementalLimit is the largest incremental, in bytes, kept for a
// database of dbBytes.
func incrementalLimit(dbBytes int64) int64 { return dbBytes/2 - 1 }

// scanLiveWAL indexes the committed frames of the live WAL; a missing WAL
// has none.
func (s *Store) scanLiveWAL(db *sqlitedb.DB) (*walScan, error) {
	src, err := s.fs.Open(db.WALPath())
	if errors.Is(err, os.ErrNotExist) {
		return &walScan{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return scanWAL(src)
}

// copyWAL writes the live WAL's committed frames into a temporary file of
// the store, compacted to the last frame of each page (see walfile.go) and
// hashed as it goes. A WAL without committed frames leaves nothing.
func (s *Store) copyWAL(f *fsmSnapshot, scan *walScan) error {
	if scan.empty() {
		return nil
	}
	f.dbSize = scan.dbBytes()
	src, err := s.fs.Open(f.db.WALPath())
	if err != nil {
		return err
	}
	defer src.Close()
	if err := s.fs.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return err
	}
	f.walPath = filepath.Join(s.tmpDir(), fmt.Sprintf("capture-%d-%d.wal", time.Now().UnixNano(), captureSeq.Add(1)))
	dst, err := s.fs.Create(f.walPath)
	if err != nil {
		return err
	}
	hw := newHashingWriter(dst)
	if err := writeCompactWAL(hw, src, scan); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	f.wal = hw.entry("wal-000")
	return dst.Close()
}

// checkpoint checkpoints the live database and records the outcome.
func (s *Store) checkpoint(db *sqlitedb.DB) error {
	res, err := db.Checkpoint(s.opts.CheckpointBusyTimeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || !res.Complete() {
		s.requireFullLocked("incomplete checkpoint")
		s.live = liveStat{}
		if err == nil {
			s.log.Warn("checkpoint incomplete, next snapshot will be full", "busy", res.Busy,
				"frames", res.LogFrames, "checkpointed", res.CheckpointedFrames, "wal_size", res.WALSize)
		}
		return err
	}
	s.live, err = statLive(db.Path())
	return err
}

// captureIncremental keeps the pages written since the parent snapshot,
// or fails with errIncrementalTooLarge (nothing done) when they would take
// half the database's bytes or more: an incremental is always less than
// half a full snapshot of the same moment.
func (s *Store) captureIncremental(f *fsmSnapshot) error {
	scan, err := s.scanLiveWAL(f.db)
	if err != nil {
		return err
	}
	if !scan.empty() && scan.compactBytes() > incrementalLimit(scan.dbBytes()) {
		return fmt.Errorf("%w (%d bytes of pages, %d of database)", errIncrementalTooLarge,
			scan.compactBytes(), scan.dbBytes())
	}
	if scan.empty() {
		s.mu.Lock()
		if p, ok := s.snaps[f.parent]; ok {
			f.dbSize = p.DBSize
		}
		s.mu.Unlock()
	}
	if err := s.copyWAL(f, scan); err != nil {
		return err
	}
	if err := s.step("capture.copied"); err != nil {
		return err
	}
	// The frames are safe in the copy; an incomplete checkpoint only makes
	// the next snapshot full.
	if err := s.checkpoint(f.db); err != nil {
		s.log.Warn("checkpoint after incremental capture failed", "error", err)
	}
	return s.step("capture.checkpointed")
}

func (s *Store) captureFull(f *fsmSnapshot) error {
	// needFull is cleared now: if this checkpoint is incomplete, checkpoint
	// sets it again for the next capture.
	s.mu.Lock()
	s.needFull = ""
	s.mu.Unlock()
	if err := s.checkpoint(f.db); err != nil {
		return err
	}
	if err := s.step("capture.checkpointed"); err != nil {
		return err
	}
	s.mu.Lock()
	incomplete := s.needFull != ""
	s.mu.Unlock()
	if incomplete {
		// Frames the checkpoint could not move travel as a WAL file.
		scan, err := s.scanLiveWAL(f.db)
		if err != nil {
			return err
		}
		if err := s.copyWAL(f, scan); err != nil {
			return err
		}
	}
	// Persist copies the file later, while writes go on into the WAL. Only a
	// checkpoint changes the file, and none runs before Release (Raft takes
	// one snapshot at a time and Capture refuses overlap) except the one
	// SQLite does when the connections close: Replace or Close. Persist
	// checks for both (generation and file identity) around its copy.
	s.liveMu.Lock()
	f.gen = s.liveGen
	s.liveMu.Unlock()
	st, err := statLive(f.db.Path())
	if err != nil {
		return err
	}
	f.stat = st
	return s.step("capture.copied")
}

// fsmSnapshot is the raft.FSMSnapshot Capture returns.
type fsmSnapshot struct {
	s       *Store
	db      *sqlitedb.DB
	kind    Kind
	parent  string
	walPath string // captured WAL copy, if any
	wal     fileEntry
	dbSize  int64    // size of the database the snapshot restores to (0: the copied file's)
	gen     uint64   // full: the store's live generation at capture
	stat    liveStat // full: the live file as the capture left it
	// installs is the store's count of received and installed snapshots
	// at capture: if it changed, the capture is superseded.
	installs uint64

	persisted bool
	released  bool
}

// ErrSuperseded is wrapped by Persist's error when a snapshot was
// received from another node or installed between the capture and Persist:
// the captured state is older than the database now holds, so it is not
// stored (the sink is cancelled), no error is recorded in Stats, and the
// next snapshot is full. Persist still fails so that Raft does not record
// a snapshot at the capture's older index (see DESIGN.md).
var ErrSuperseded = errors.New("snapshot superseded by a snapshot installed since the capture")

// Persist writes the captured snapshot into sink, which must come from the
// same Store's Create.
func (f *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	k, ok := sink.(*Sink)
	if !ok || k.s != f.s {
		sink.Cancel()
		return errors.New("snapshot: Persist needs a sink created by the same snapshot.Store")
	}
	err := f.s.checkCurrent(f.installs)
	if err == nil {
		err = f.place(k)
	}
	if err == nil {
		err = k.Close()
	} else {
		err = errors.Join(err, k.Cancel())
	}
	if errors.Is(err, ErrSuperseded) {
		f.s.skipSuperseded(k.ID(), err)
		return fmt.Errorf("persist %s: %w", k.ID(), err)
	}
	if err != nil {
		f.s.mu.Lock()
		f.s.requireFullLocked("persist failed")
		f.s.mu.Unlock()
		f.s.setErr(fmt.Errorf("persist %s: %w", k.ID(), err))
		return err
	}
	f.persisted = true
	f.s.mu.Lock()
	f.s.lastErr = ""
	f.s.mu.Unlock()
	return nil
}

// checkCurrent fails with ErrSuperseded if a snapshot was received or
// installed since the capture that recorded installs.
func (s *Store) checkCurrent(installs uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkCurrentLocked(installs)
}

func (s *Store) checkCurrentLocked(installs uint64) error {
	if s.installs != installs {
		return ErrSuperseded
	}
	return nil
}

// skipSuperseded records a capture dropped because an install superseded
// it: not an error (LastError is left alone), but the next capture is full.
func (s *Store) skipSuperseded(id string, err error) {
	s.mu.Lock()
	s.superseded++
	s.requireFullLocked("previous capture superseded by an install")
	s.mu.Unlock()
	s.log.Info("snapshot skipped: an install replaced the database since the capture", "id", id, "reason", err)
}

// place puts the snapshot's files into the sink's directory.
func (f *fsmSnapshot) place(k *Sink) error {
	var files []fileEntry
	if f.kind == KindFull {
		e, err := f.s.copyLiveDB(f, filepath.Join(k.dir, "db"))
		if err != nil {
			return err
		}
		files = append(files, e)
	}
	if f.walPath != "" {
		name := "wal-000"
		if err := f.s.fs.Rename(f.walPath, filepath.Join(k.dir, name)); err != nil {
			return err
		}
		f.walPath = ""
		e := f.wal
		e.Name = name
		files = append(files, e)
	}
	dbSize := f.dbSize
	if dbSize == 0 && f.kind == KindFull {
		dbSize = files[0].Size
	}
	k.adopt(f.kind, map[bool]string{true: "", false: f.parent}[f.kind == KindFull], files, dbSize, f.installs)
	return nil
}

// copyLiveDB copies the live database file to dst, hashing it. It holds
// liveMu, so Install cannot swap the file during the copy, and fails if the
// file was replaced or written since the capture.
func (s *Store) copyLiveDB(f *fsmSnapshot, dst string) (fileEntry, error) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	changed := errors.New("live database replaced or checkpointed since the capture")
	if s.liveGen != f.gen {
		return fileEntry{}, ErrSuperseded
	}
	if st, err := statLive(f.stat.path); err != nil || st != f.stat {
		return fileEntry{}, errors.Join(changed, err)
	}
	in, err := s.fs.Open(f.stat.path)
	if err != nil {
		return fileEntry{}, err
	}
	defer in.Close()
	out, err := s.fs.Create(dst)
	if err != nil {
		return fileEntry{}, err
	}
	hw := newHashingWriter(out)
	if _, err := io.CopyBuffer(hw, in, make([]byte, 1<<20)); err != nil {
		out.Close()
		return fileEntry{}, err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fileEntry{}, err
	}
	if st, err := statLive(f.stat.path); err != nil || st != f.stat {
		out.Close()
		return fileEntry{}, errors.Join(changed, err)
	}
	return hw.entry("db"), out.Close()
}

// Release ends the snapshot: if Persist did not complete, the next snapshot
// will be full.
func (f *fsmSnapshot) Release() {
	if f.released {
		return
	}
	f.released = true
	f.cleanup()
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.pending = false
	if !f.persisted {
		f.s.requireFullLocked("snapshot released without a successful persist")
	}
}

func (f *fsmSnapshot) cleanup() {
	if f.walPath != "" {
		if err := f.s.fs.Remove(f.walPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.s.log.Warn("could not remove a captured WAL copy (tmp/ is emptied at the next start)",
				"path", f.walPath, "error", err)
		}
		f.walPath = ""
	}
}
