package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// Restore reads a snapshot stream (from Store.Open, directly or through a
// sink) and materialises it as one complete SQLite file in dir: the base
// database is written and verified, then each WAL file is written,
// verified and checkpointed into it. It returns the file's path, to hand to
// sqlitedb.DB.Replace (dir must be on the live database's file system).
// rc is always closed. On any error nothing is left behind and the live
// database is untouched.
func Restore(rc io.ReadCloser, dir string) (string, error) {
	return restoreFS(OSFS{}, rc, dir)
}

func restoreFS(fsys FS, rc io.ReadCloser, dir string) (string, error) {
	defer rc.Close()
	path := newRestorePath(dir)
	if err := restoreInto(fsys, rc, path); err != nil {
		return "", errors.Join(err, removeSQLiteFiles(fsys, path))
	}
	return path, nil
}

// RestorePrefix starts the name of every file a restore or an install
// writes next to the live database before swapping it in. Such a file is
// never needed after a restart (see RemoveRestoreLeftovers).
const RestorePrefix = "restore-"

func newRestorePath(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("%s%d.db", RestorePrefix, time.Now().UnixNano()))
}

// RemoveRestoreLeftovers removes, from dir (the live database's
// directory), the files of restores and installs that a crash interrupted:
// RestorePrefix*.db and what SQLite kept next to them. Call it after New
// (whose recovery may move such a file back into a snapshot) and before
// any install.
func RemoveRestoreLeftovers(fsys FS, dir string) error {
	if fsys == nil {
		fsys = OSFS{}
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, RestorePrefix) && !e.IsDir() {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeSQLiteFiles removes a database file and whatever SQLite keeps next
// to it; a missing file is not an error, any other failure is reported.
func removeSQLiteFiles(fsys FS, path string) error {
	var errs []error
	for _, p := range []string{path + "-wal", path + "-shm", path + "-journal", path} {
		if err := fsys.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func restoreInto(fsys FS, rc io.Reader, path string) error {
	h, err := readHeader(rc)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	verify := !verifiedAtSource(rc)
	for i, e := range h.Files {
		dst := path
		if i > 0 {
			dst = path + "-wal"
		}
		if err := writeVerified(fsys, rc, dst, e, buf, verify); err != nil {
			return err
		}
		if i > 0 {
			if err := sqlitedb.CheckpointFile(path); err != nil {
				return err
			}
		}
	}
	if n, _ := rc.Read(buf[:1]); n != 0 {
		return fmt.Errorf("%w: trailing bytes after the last file", ErrFormat)
	}
	return nil
}

func writeVerified(fsys FS, r io.Reader, path string, e fileEntry, buf []byte, verify bool) error {
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	w := &writeback{f: f}
	err = copyExact(w, r, e, buf, verify)
	if serr := w.wait(); err == nil {
		err = serr
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writebackEvery is how many bytes a large write goes between two flushes
// to the disk in the background.
const writebackEvery = 32 << 20

// writeback writes to f and, every writebackEvery bytes, starts a Sync of
// f in the background (unless one still runs). A large file then reaches
// the disk while it is being written, instead of all at once in the final
// Sync: the disk works while the data arrives, and the final Sync only has
// the last bytes left (a 1 GiB install spent a fifth of its time in that
// Sync). Call wait before the final Sync and Close.
type writeback struct {
	f       File
	pending int64
	running chan error // the background Sync's result; nil if none ran
}

// Write writes p to f.
func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.pending += int64(n)
	if err == nil && w.pending >= writebackEvery {
		err = w.start()
	}
	return n, err
}

func (w *writeback) start() error {
	if w.running != nil {
		select {
		case err := <-w.running:
			w.running = nil
			if err != nil {
				return err
			}
		default:
			return nil // the previous one still runs; try at the next write
		}
	}
	w.pending = 0
	w.running = make(chan error, 1)
	go func(done chan<- error) { done <- w.f.Sync() }(w.running)
	return nil
}

// wait waits for a background Sync and returns its error.
func (w *writeback) wait() error {
	if w.running == nil {
		return nil
	}
	err := <-w.running
	w.running = nil
	return err
}
