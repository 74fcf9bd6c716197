package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// fsmSnapshot is the raft.FSMSnapshot Capture returns.
type fsmSnapshot struct {
	w       *WALCapture
	db      CaptureSource
	kind    Kind
	parent  string
	walPath string // captured WAL copy, if any
	wal     fileEntry
	dbSize  int64    // size of the database the snapshot restores to (0: the copied file's)
	gen     uint64   // full: the live generation at capture
	stat    liveStat // full: the live file as the capture left it
	// epoch is the catalogue's epoch at capture: if it changed, the capture
	// is superseded.
	epoch uint64

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
// same Catalog's Create.
func (f *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := f.w
	k, ok := w.catalog.ownSink(sink)
	if !ok {
		sink.Cancel()
		return errors.New("snapshot: Persist needs a sink created by the same snapshot.Store")
	}
	err := w.catalog.current(f.epoch)
	if err == nil {
		err = f.place(k)
	}
	if err == nil {
		err = k.Close()
	} else {
		err = errors.Join(err, k.Cancel())
	}
	if errors.Is(err, ErrSuperseded) {
		w.skipSuperseded(k.ID(), err)
		return fmt.Errorf("persist %s: %w", k.ID(), err)
	}
	if err != nil {
		w.requireFull("persist failed")
		w.errs.set(fmt.Errorf("persist %s: %w", k.ID(), err))
		return err
	}
	f.persisted = true
	w.errs.clear()
	return nil
}

// skipSuperseded records a capture dropped because an install superseded
// it: not an error (the last error is left alone), but the next capture is
// full.
func (w *WALCapture) skipSuperseded(id string, err error) {
	w.mu.Lock()
	w.superseded++
	w.requireFullLocked("previous capture superseded by an install")
	w.mu.Unlock()
	w.log.Info("snapshot skipped: an install replaced the database since the capture", "id", id, "reason", err)
}

// place puts the snapshot's files into the sink's directory.
func (f *fsmSnapshot) place(k *Sink) error {
	var files []fileEntry
	if f.kind == KindFull {
		e, err := f.w.copyLiveDB(f, filepath.Join(k.dir, "db"))
		if err != nil {
			return err
		}
		files = append(files, e)
	}
	if f.walPath != "" {
		name := "wal-000"
		if err := f.w.fs.Rename(f.walPath, filepath.Join(k.dir, name)); err != nil {
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
	parent := f.parent
	if f.kind == KindFull {
		parent = ""
	}
	k.adopt(f.kind, parent, files, dbSize, f.epoch)
	return nil
}

// copyLiveDB copies the live database file to dst, hashing it. It holds
// liveMu, so the Installer cannot swap the file during the copy, and fails
// if the file was replaced or written since the capture.
func (w *WALCapture) copyLiveDB(f *fsmSnapshot, dst string) (fileEntry, error) {
	w.liveMu.Lock()
	defer w.liveMu.Unlock()
	changed := errors.New("live database replaced or checkpointed since the capture")
	if w.liveGen != f.gen {
		return fileEntry{}, ErrSuperseded
	}
	if st, err := statLive(f.stat.path); err != nil || st != f.stat {
		return fileEntry{}, errors.Join(changed, err)
	}
	in, err := w.fs.Open(f.stat.path)
	if err != nil {
		return fileEntry{}, err
	}
	defer in.Close()
	out, err := w.fs.Create(dst)
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
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = false
	if !f.persisted {
		w.requireFullLocked("snapshot released without a successful persist")
	}
}

func (f *fsmSnapshot) cleanup() {
	if f.walPath != "" {
		if err := f.w.fs.Remove(f.walPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.w.log.Warn("could not remove a captured WAL copy (tmp/ is emptied at the next start)",
				"path", f.walPath, "error", err)
		}
		f.walPath = ""
	}
}
