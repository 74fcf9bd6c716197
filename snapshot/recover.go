package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

func copyBuf(w io.Writer, r io.Reader) (int64, error) {
	return io.CopyBuffer(w, r, make([]byte, 1<<20))
}

// recover brings the directory to a consistent state after any
// interruption: it finishes an interrupted consolidation, clears
// temporary files (unfinished captures and sinks), drops snapshots whose
// meta or files are missing or whose chain is broken, and keeps only the
// newest valid chain.
func (s *Store) recover() error {
	for _, d := range []string{filepath.Join(s.dir, "snapshots"), s.tmpDir()} {
		if err := s.fs.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := s.fs.RemoveAll(s.tmpDir()); err != nil {
		return err
	}
	if err := s.fs.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return err
	}
	if err := s.fs.Remove(s.journalPath() + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := s.recoverJournal(); err != nil {
		return err
	}
	if err := s.loadSnapshots(); err != nil {
		return err
	}
	s.pickHead()
	for id := range s.snaps {
		if !s.inHeadChain(id) {
			s.log.Info("removing snapshot outside the latest chain", "id", id)
			delete(s.snaps, id)
			if err := s.fs.RemoveAll(s.snapDir(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) recoverJournal() error {
	ok, err := s.exists(s.journalPath())
	if err != nil || !ok {
		return err
	}
	f, err := s.fs.Open(s.journalPath())
	if err != nil {
		return err
	}
	var j journal
	err = json.NewDecoder(f).Decode(&j)
	f.Close()
	if err != nil {
		// writeFileAtomic never leaves a torn journal; if it is unreadable
		// the consolidation never started changing files.
		s.log.Warn("dropping unreadable consolidation journal", "error", err)
		return s.fs.Remove(s.journalPath())
	}
	s.log.Info("finishing an interrupted consolidation", "target", j.Target.ID)
	if err := s.applyJournal(&j); err != nil {
		s.log.Error("cannot finish interrupted consolidation; its chain will be dropped", "error", err)
		return s.fs.Remove(s.journalPath())
	}
	return nil
}

// loadSnapshots reads every snapshot directory, removing those that are
// incomplete.
func (s *Store) loadSnapshots() error {
	entries, err := s.fs.ReadDir(filepath.Join(s.dir, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := s.snapDir(e.Name())
		m, err := s.readMeta(dir)
		if err == nil {
			err = s.checkFiles(dir, m)
		}
		if err != nil {
			s.log.Warn("removing incomplete snapshot", "dir", dir, "error", err)
			if err := s.fs.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		s.snaps[m.ID] = m
	}
	return nil
}

// checkFiles checks that a snapshot's files exist with their recorded
// sizes (content is verified by sha256 whenever it is streamed).
func (s *Store) checkFiles(dir string, m *snapMeta) error {
	if m.ID != filepath.Base(dir) {
		return fmt.Errorf("meta id %q in directory %s", m.ID, dir)
	}
	for _, f := range m.Files {
		fi, err := s.fs.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return err
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("%s: size %d, recorded %d", f.Name, fi.Size(), f.Size)
		}
	}
	return nil
}

// pickHead makes the newest snapshot with a complete chain the head.
func (s *Store) pickHead() {
	s.head = ""
	for _, m := range s.sortedLocked() {
		if _, err := s.chainLocked(m.ID); err != nil {
			s.log.Warn("snapshot chain broken", "id", m.ID, "error", err)
			continue
		}
		s.head, s.lastIdx = m.ID, m.Index
		return
	}
}

func (s *Store) inHeadChain(id string) bool {
	if s.head == "" {
		return false
	}
	chain, _ := s.chainLocked(s.head)
	for _, m := range chain {
		if m.ID == id {
			return true
		}
	}
	return false
}
