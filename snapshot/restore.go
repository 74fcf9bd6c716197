package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	path := filepath.Join(dir, fmt.Sprintf("restore-%d.db", time.Now().UnixNano()))
	if err := restoreInto(fsys, rc, path); err != nil {
		return "", errors.Join(err, removeSQLiteFiles(fsys, path))
	}
	return path, nil
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
	if err := copyExact(f, r, e, buf, verify); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Install is FSM.Restore for a database kept by this store's node: it
// restores rc next to db's file, swaps it in with db.Replace (which closes
// every connection first) and makes the next snapshot full. If anything
// fails before the swap, db is left as it was.
func (s *Store) Install(db *sqlitedb.DB, rc io.ReadCloser) error {
	path, err := restoreFS(s.fs, rc, filepath.Dir(db.Path()))
	if err != nil {
		s.setErr(fmt.Errorf("restore: %w", err))
		return err
	}
	s.mu.Lock()
	s.requireFullLocked("database replaced by a restore")
	s.live = liveStat{}
	s.installs++ // a capture not yet persisted is now stale
	s.mu.Unlock()
	// Wait for a full snapshot's copy of the live file in progress, and make
	// any copy not yet started fail instead of reading the new file.
	s.liveMu.Lock()
	s.liveGen++
	s.liveMu.Unlock()
	if err := db.Replace(path, s.fs); err != nil {
		err = errors.Join(fmt.Errorf("replace database: %w", err), removeSQLiteFiles(s.fs, path))
		s.setErr(err)
		return err
	}
	return nil
}
