package snapshot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// CaptureSource is what a WALCapture needs of the live database: where its
// files are, and a checkpoint. *sqlitedb.DB implements it.
type CaptureSource interface {
	// Path is the database file.
	Path() string
	// WALPath is the database's write-ahead log.
	WALPath() string
	// Checkpoint moves the WAL's frames into the database file, waiting at
	// most busyTimeout for readers, and reports how far it got.
	Checkpoint(busyTimeout time.Duration) (sqlitedb.CheckpointResult, error)
}

var _ CaptureSource = (*sqlitedb.DB)(nil)

// captureCatalog is what a WALCapture needs of the Catalog that stores its
// snapshots.
type captureCatalog interface {
	// headEpoch returns the head an incremental builds on and the epoch a
	// capture records, read together.
	headEpoch() (head string, epoch uint64)
	// dbSize is the size of the database snapshot id restores to.
	dbSize(id string) int64
	// current fails with ErrSuperseded once the epoch moved past epoch.
	current(epoch uint64) error
	// ownSink returns sink as one of the catalogue's sinks, or false.
	ownSink(sink raft.SnapshotSink) (*Sink, bool)
}

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

// WALCapture takes the FSM's side of snapshots of the live database: an
// incremental one copies the WAL frames written since the head (then
// checkpoints), a full one checkpoints and leaves the copy of the database
// file to Persist. It decides which one the next capture is, and the
// FSMSnapshot it returns places the captured files into a sink of its
// Catalog.
//
// Locks: mu guards needFull, live, pending and superseded. liveMu guards
// liveGen and is held while Persist copies the live database file, so that
// a swap (fenceLiveCopy, before the Installer replaces the file) waits for
// a copy in progress. Neither is held while the other is taken, nor while
// calling the Catalog.
type WALCapture struct {
	fs         FS
	log        *slog.Logger
	hook       stepHook
	busy       time.Duration // checkpoint busy timeout
	catalog    captureCatalog
	stagingDir string // where captured WAL copies wait for Persist (the catalogue's tmp/)
	errs       *lastError

	mu         sync.Mutex
	needFull   string // non-empty: why the next capture must be full
	live       liveStat
	pending    bool
	superseded uint64

	liveMu  sync.Mutex
	liveGen uint64
}

// newWALCapture returns the capture side of catalog.
func newWALCapture(catalog *Catalog, opts Options, errs *lastError) *WALCapture {
	return &WALCapture{fs: opts.FS, log: opts.Logger, hook: opts.hook, busy: opts.CheckpointBusyTimeout,
		catalog: catalog, stagingDir: catalog.tmpDir(), errs: errs, needFull: "first snapshot since start"}
}

// Capture takes the FSM's side of a snapshot of db. Call it from
// FSM.Snapshot, on the FSM goroutine, so no write runs concurrently. The
// snapshot is incremental (the WAL frames written since the catalogue's
// latest snapshot, then a checkpoint) unless fullRequired is set or a full
// one is needed: first snapshot since start, after an incomplete
// checkpoint, a failed or abandoned Persist, a Restore, or any change of
// the live file outside the chain. A full capture checkpoints the
// database; Persist then copies the file while writes go on into the WAL.
// Nothing here waits for Install or Replace, which matters: Raft's
// follower blocks its main loop on FSM.Restore while its snapshot
// goroutine, between FSM.Snapshot and Persist, waits for that main loop.
//
// The database must run with AutoCheckpoint < 0. The returned
// FSMSnapshot's Persist only accepts sinks of the same Catalog.
func (w *WALCapture) Capture(db CaptureSource, fullRequired bool) (raft.FSMSnapshot, error) {
	// The head and epoch are read before the capture's own state, so that a
	// snapshot received meanwhile either makes this capture full (its
	// requireFull came first) or supersedes it (its epoch is newer).
	parent, epoch := w.catalog.headEpoch()
	w.mu.Lock()
	if w.pending {
		w.mu.Unlock()
		return nil, errors.New("snapshot: previous snapshot not yet released")
	}
	full, why := fullRequired, "requested"
	if !full {
		full, why = w.needFullLocked(db, parent)
	}
	w.pending = true
	w.mu.Unlock()

	f := &fsmSnapshot{w: w, db: db, parent: parent, kind: KindIncremental, epoch: epoch}
	var err error
	if !full {
		err = w.captureIncremental(f)
		if errors.Is(err, errIncrementalTooLarge) {
			full, why = true, err.Error()
		}
	}
	if full {
		f.kind = KindFull
		err = w.captureFull(f)
	}
	if err != nil {
		f.cleanup()
		w.mu.Lock()
		w.pending = false
		w.requireFullLocked("capture failed")
		w.mu.Unlock()
		w.errs.set(fmt.Errorf("capture: %w", err))
		return nil, err
	}
	w.log.Debug("snapshot captured", "kind", f.kind, "reason", why, "wal_bytes", f.wal.Size, "db_bytes", f.dbSize)
	return f, nil
}

// needFullLocked decides whether the next capture, on top of head, must be
// full.
func (w *WALCapture) needFullLocked(db CaptureSource, head string) (bool, string) {
	if w.needFull != "" {
		return true, w.needFull
	}
	if head == "" {
		return true, "no snapshot yet"
	}
	st, err := statLive(db.Path())
	if err != nil || st != w.live {
		return true, "live database file changed outside the snapshot chain"
	}
	return false, ""
}

// requireFull makes the next capture full, recording why (the first reason
// given since the last full capture is kept).
func (w *WALCapture) requireFull(why string) {
	w.mu.Lock()
	w.requireFullLocked(why)
	w.mu.Unlock()
}

func (w *WALCapture) requireFullLocked(why string) {
	if w.needFull == "" {
		w.needFull = why
	}
}

// liveReplaced records that the live database file is about to be
// replaced: the next capture is full, and the file as the last checkpoint
// left it is forgotten.
func (w *WALCapture) liveReplaced(why string) {
	w.mu.Lock()
	w.requireFullLocked(why)
	w.live = liveStat{}
	w.mu.Unlock()
}

// fenceLiveCopy waits for a full snapshot's copy of the live file in
// progress, and makes any copy of a capture taken before it fail instead of
// reading the file that replaces it.
func (w *WALCapture) fenceLiveCopy() {
	w.liveMu.Lock()
	w.liveGen++
	w.liveMu.Unlock()
}

// stats reports why the next capture will be full (empty if it need not
// be) and how many captures were superseded.
func (w *WALCapture) stats() (nextFull string, superseded uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.needFull, w.superseded
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
func (w *WALCapture) scanLiveWAL(db CaptureSource) (*walScan, error) {
	src, err := w.fs.Open(db.WALPath())
	if errors.Is(err, os.ErrNotExist) {
		return &walScan{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return scanWAL(src)
}

// copyWAL writes the live WAL's committed frames into a staging file,
// compacted to the last frame of each page (see walfile.go) and hashed as
// it goes. A WAL without committed frames leaves nothing.
func (w *WALCapture) copyWAL(f *fsmSnapshot, scan *walScan) error {
	if scan.empty() {
		return nil
	}
	f.dbSize = scan.dbBytes()
	src, err := w.fs.Open(f.db.WALPath())
	if err != nil {
		return err
	}
	defer src.Close()
	if err := w.fs.MkdirAll(w.stagingDir, 0o755); err != nil {
		return err
	}
	f.walPath = filepath.Join(w.stagingDir, fmt.Sprintf("capture-%d-%d.wal", time.Now().UnixNano(), captureSeq.Add(1)))
	dst, err := w.fs.Create(f.walPath)
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
func (w *WALCapture) checkpoint(db CaptureSource) error {
	res, err := db.Checkpoint(w.busy)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || !res.Complete() {
		w.requireFullLocked("incomplete checkpoint")
		w.live = liveStat{}
		if err == nil {
			w.log.Warn("checkpoint incomplete, next snapshot will be full", "busy", res.Busy,
				"frames", res.LogFrames, "checkpointed", res.CheckpointedFrames, "wal_size", res.WALSize)
		}
		return err
	}
	w.live, err = statLive(db.Path())
	return err
}

// captureIncremental keeps the pages written since the parent snapshot,
// or fails with errIncrementalTooLarge (nothing done) when they would take
// half the database's bytes or more: an incremental is always less than
// half a full snapshot of the same moment.
func (w *WALCapture) captureIncremental(f *fsmSnapshot) error {
	scan, err := w.scanLiveWAL(f.db)
	if err != nil {
		return err
	}
	if !scan.empty() && scan.compactBytes() > incrementalLimit(scan.dbBytes()) {
		return fmt.Errorf("%w (%d bytes of pages, %d of database)", errIncrementalTooLarge,
			scan.compactBytes(), scan.dbBytes())
	}
	if scan.empty() {
		f.dbSize = w.catalog.dbSize(f.parent)
	}
	if err := w.copyWAL(f, scan); err != nil {
		return err
	}
	if err := w.hook.at("capture.copied"); err != nil {
		return err
	}
	// The frames are safe in the copy; an incomplete checkpoint only makes
	// the next snapshot full.
	if err := w.checkpoint(f.db); err != nil {
		w.log.Warn("checkpoint after incremental capture failed", "error", err)
	}
	return w.hook.at("capture.checkpointed")
}

func (w *WALCapture) captureFull(f *fsmSnapshot) error {
	// needFull is cleared now: if this checkpoint is incomplete, checkpoint
	// sets it again for the next capture.
	w.mu.Lock()
	w.needFull = ""
	w.mu.Unlock()
	if err := w.checkpoint(f.db); err != nil {
		return err
	}
	if err := w.hook.at("capture.checkpointed"); err != nil {
		return err
	}
	w.mu.Lock()
	incomplete := w.needFull != ""
	w.mu.Unlock()
	if incomplete {
		// Frames the checkpoint could not move travel as a WAL file.
		scan, err := w.scanLiveWAL(f.db)
		if err != nil {
			return err
		}
		if err := w.copyWAL(f, scan); err != nil {
			return err
		}
	}
	// Persist copies the file later, while writes go on into the WAL. Only a
	// checkpoint changes the file, and none runs before Release (Raft takes
	// one snapshot at a time and Capture refuses overlap) except the one
	// SQLite does when the connections close: Replace or Close. Persist
	// checks for both (generation and file identity) around its copy.
	w.liveMu.Lock()
	f.gen = w.liveGen
	w.liveMu.Unlock()
	st, err := statLive(f.db.Path())
	if err != nil {
		return err
	}
	f.stat = st
	return w.hook.at("capture.copied")
}
