package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// walRef names one WAL file of the chain being consolidated.
type walRef struct {
	Snap string `json:"snap"`
	Name string `json:"name"`
}

// journal is consolidate.json: everything needed to finish an interrupted
// consolidation. Every step of applyJournal can be redone.
type journal struct {
	Base   string   `json:"base"`
	Target snapMeta `json:"target"`
	WALs   []walRef `json:"wals"`
	Remove []string `json:"remove"`
}

// Consolidate folds the latest snapshot's chain into one full snapshot: the
// WAL files are checkpointed, in order, into the base snapshot's database
// file, which then becomes the latest snapshot's file; the older snapshots
// are removed. It waits (without limit, until ctx ends) for leases on the
// chain's files, and meanwhile blocks new leases on them; new snapshots can
// still be created. The janitor runs it when the chain reaches
// Options.ConsolidateAfter incrementals.
func (s *Store) Consolidate(ctx context.Context) error {
	s.consolMu.Lock()
	defer s.consolMu.Unlock()
	s.mu.Lock()
	j, dirs, err := s.planLocked()
	s.mu.Unlock()
	if err != nil || j == nil {
		return err
	}
	err = s.leases.Exclusive(ctx, "consolidate "+j.Target.ID, dirs, func() error {
		if err := s.writeJournal(j); err != nil {
			return err
		}
		if err := s.step("consolidate.journal"); err != nil {
			return err
		}
		if err := s.applyJournal(j); err != nil {
			return err
		}
		s.mu.Lock()
		for _, id := range j.Remove {
			delete(s.snaps, id)
			s.retireLocked(id)
		}
		t := j.Target
		s.snaps[t.ID] = &t
		s.consols++
		s.consolAt = time.Now()
		s.mu.Unlock()
		return nil
	})
	if err != nil {
		s.setErr(fmt.Errorf("consolidate: %w", err))
		return err
	}
	s.log.Info("snapshot chain consolidated", "id", j.Target.ID, "wal_files", len(j.WALs), "removed", len(j.Remove))
	return nil
}

// planLocked describes the consolidation of the head's chain, or returns
// nil if it is already a single self-contained file.
func (s *Store) planLocked() (*journal, []string, error) {
	if s.head == "" {
		return nil, nil, nil
	}
	chain, err := s.chainLocked(s.head)
	if err != nil {
		return nil, nil, err
	}
	j := &journal{Base: chain[0].ID, Target: *chain[len(chain)-1]}
	var dirs []string
	for _, m := range chain {
		dirs = append(dirs, s.snapDir(m.ID))
		if m.ID != j.Target.ID && m.ID != j.Base {
			j.Remove = append(j.Remove, m.ID)
		}
		for _, f := range m.Files {
			if f.Name != "db" {
				j.WALs = append(j.WALs, walRef{Snap: m.ID, Name: f.Name})
			}
		}
	}
	if len(chain) == 1 && len(j.WALs) == 0 {
		return nil, nil, nil
	}
	if j.Base != j.Target.ID {
		j.Remove = append(j.Remove, j.Base)
	}
	j.Target.Kind, j.Target.Parent, j.Target.Files = KindFull, "", nil
	return j, dirs, nil
}

func (s *Store) writeJournal(j *journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.journalPath(), data)
}

func (s *Store) exists(path string) (bool, error) {
	_, err := s.fs.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// applyJournal carries a consolidation through from wherever it stopped.
func (s *Store) applyJournal(j *journal) error {
	baseDB := filepath.Join(s.snapDir(j.Base), "db")
	targetDB := filepath.Join(s.snapDir(j.Target.ID), "db")
	baseThere, err := s.exists(baseDB)
	if err != nil {
		return err
	}
	moved := j.Base != j.Target.ID && !baseThere
	if !moved {
		if !baseThere {
			return fmt.Errorf("consolidate: base database %s is missing", baseDB)
		}
		if err := s.foldWALs(j, baseDB); err != nil {
			return err
		}
		if j.Base != j.Target.ID {
			if err := s.fs.Rename(baseDB, targetDB); err != nil {
				return err
			}
			if err := s.step("consolidate.moved"); err != nil {
				return err
			}
		}
	}
	return s.finishJournal(j, targetDB)
}

// foldWALs checkpoints every WAL of the journal still on disk into db.
func (s *Store) foldWALs(j *journal, db string) error {
	if ok, err := s.exists(db + "-wal"); err != nil {
		return err
	} else if ok { // moved into place before an interruption: redo
		if err := sqlitedb.CheckpointFile(db); err != nil {
			return err
		}
	}
	for _, w := range j.WALs {
		p := filepath.Join(s.snapDir(w.Snap), w.Name)
		ok, err := s.exists(p)
		if err != nil {
			return err
		}
		if !ok {
			continue // already folded in
		}
		if err := s.fs.Rename(p, db+"-wal"); err != nil {
			return err
		}
		if err := s.step("consolidate.wal-moved"); err != nil {
			return err
		}
		if err := sqlitedb.CheckpointFile(db); err != nil {
			return err
		}
		if err := s.step("consolidate.checkpointed"); err != nil {
			return err
		}
	}
	return nil
}

// finishJournal hashes the consolidated file, makes the target snapshot
// full, removes the older snapshots and the journal.
func (s *Store) finishJournal(j *journal, targetDB string) error {
	e, err := s.hashFile(targetDB)
	if err != nil {
		return err
	}
	e.Name = "db"
	j.Target.Kind, j.Target.Parent, j.Target.Files, j.Target.DBSize = KindFull, "", []fileEntry{e}, e.Size
	if err := s.writeMeta(s.snapDir(j.Target.ID), &j.Target); err != nil {
		return err
	}
	if err := s.step("consolidate.meta"); err != nil {
		return err
	}
	for _, id := range j.Remove {
		if err := s.fs.RemoveAll(s.snapDir(id)); err != nil {
			return err
		}
	}
	if err := s.step("consolidate.pruned"); err != nil {
		return err
	}
	if err := s.fs.Remove(s.journalPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return s.step("consolidate.done")
}

func (s *Store) hashFile(path string) (fileEntry, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return fileEntry{}, err
	}
	defer f.Close()
	hw := newHashingWriter(discard{})
	if _, err := copyBuf(hw, f); err != nil {
		return fileEntry{}, err
	}
	return hw.entry(filepath.Base(path)), nil
}

type discard struct{}

// Write discards p.
func (discard) Write(p []byte) (int, error) { return len(p), nil }

// prune removes every snapshot outside the latest one's chain, each once no
// lease covers it.
func (s *Store) prune() error {
	s.consolMu.Lock()
	defer s.consolMu.Unlock()
	s.mu.Lock()
	keep := map[string]bool{}
	if s.head != "" {
		chain, err := s.chainLocked(s.head)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		for _, m := range chain {
			keep[m.ID] = true
		}
	}
	var victims []string
	for id := range s.snaps {
		if !keep[id] {
			victims = append(victims, id)
			delete(s.snaps, id) // unlisted first, so no new lease can cover it
			s.retireLocked(id)
		}
	}
	s.mu.Unlock()
	for _, id := range victims {
		if err := s.guardedRemoveAll(s.snapDir(id)); err != nil {
			return err
		}
	}
	return nil
}

// janitor prunes and consolidates in the background after each new
// snapshot, so that Create and Close never wait for a lease.
func (s *Store) janitor() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
		if err := s.prune(); err != nil && s.ctx.Err() == nil {
			s.setErr(fmt.Errorf("prune: %w", err))
		}
		if s.shouldConsolidate() {
			s.Consolidate(s.ctx) //nolint:errcheck // recorded in Stats by Consolidate
		}
	}
}

func (s *Store) shouldConsolidate() bool {
	if s.opts.ConsolidateAfter < 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == "" {
		return false
	}
	chain, err := s.chainLocked(s.head)
	return err == nil && len(chain)-1 >= s.opts.ConsolidateAfter
}
