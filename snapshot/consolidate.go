package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
func (c *Catalog) Consolidate(ctx context.Context) error {
	c.consolMu.Lock()
	defer c.consolMu.Unlock()
	c.mu.Lock()
	j, dirs, err := c.planLocked()
	c.mu.Unlock()
	if err != nil || j == nil {
		return err
	}
	err = c.leases.Exclusive(ctx, "consolidate "+j.Target.ID, dirs, func() error {
		if err := c.writeJournal(j); err != nil {
			return err
		}
		if err := c.hook.at("consolidate.journal"); err != nil {
			return err
		}
		if err := c.applyJournal(j); err != nil {
			return err
		}
		c.mu.Lock()
		for _, id := range j.Remove {
			delete(c.snaps, id)
			c.retireLocked(id)
		}
		t := j.Target
		c.snaps[t.ID] = &t
		c.consols++
		c.consolAt = time.Now()
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		c.errs.set(fmt.Errorf("consolidate: %w", err))
		return err
	}
	c.log.Info("snapshot chain consolidated", "id", j.Target.ID, "wal_files", len(j.WALs), "removed", len(j.Remove))
	return nil
}

// planLocked describes the consolidation of the head's chain, or returns
// nil if it is already a single self-contained file.
func (c *Catalog) planLocked() (*journal, []string, error) {
	if c.head == "" {
		return nil, nil, nil
	}
	chain, err := c.chainLocked(c.head)
	if err != nil {
		return nil, nil, err
	}
	j := &journal{Base: chain[0].ID, Target: *chain[len(chain)-1]}
	var dirs []string
	for _, m := range chain {
		dirs = append(dirs, c.snapDir(m.ID))
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

func (c *Catalog) writeJournal(j *journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return c.writeFileAtomic(c.journalPath(), data)
}

// applyJournal carries a consolidation through from wherever it stopped.
func (c *Catalog) applyJournal(j *journal) error {
	baseDB := filepath.Join(c.snapDir(j.Base), "db")
	targetDB := filepath.Join(c.snapDir(j.Target.ID), "db")
	baseThere, err := c.exists(baseDB)
	if err != nil {
		return err
	}
	moved := j.Base != j.Target.ID && !baseThere
	if !moved {
		if !baseThere {
			return fmt.Errorf("consolidate: base database %s is missing", baseDB)
		}
		if err := c.foldWALs(j, baseDB); err != nil {
			return err
		}
		if j.Base != j.Target.ID {
			if err := c.fs.Rename(baseDB, targetDB); err != nil {
				return err
			}
			if err := c.hook.at("consolidate.moved"); err != nil {
				return err
			}
		}
	}
	return c.finishJournal(j, targetDB)
}

// foldWALs checkpoints every WAL of the journal still on disk into db.
func (c *Catalog) foldWALs(j *journal, db string) error {
	if ok, err := c.exists(db + "-wal"); err != nil {
		return err
	} else if ok { // moved into place before an interruption: redo
		if err := sqlitedb.CheckpointFile(db); err != nil {
			return err
		}
	}
	for _, w := range j.WALs {
		p := filepath.Join(c.snapDir(w.Snap), w.Name)
		ok, err := c.exists(p)
		if err != nil {
			return err
		}
		if !ok {
			continue // already folded in
		}
		if err := c.fs.Rename(p, db+"-wal"); err != nil {
			return err
		}
		if err := c.hook.at("consolidate.wal-moved"); err != nil {
			return err
		}
		if err := sqlitedb.CheckpointFile(db); err != nil {
			return err
		}
		if err := c.hook.at("consolidate.checkpointed"); err != nil {
			return err
		}
	}
	return nil
}

// finishJournal hashes the consolidated file, makes the target snapshot
// full, removes the older snapshots and the journal.
func (c *Catalog) finishJournal(j *journal, targetDB string) error {
	e, err := c.hashFile(targetDB)
	if err != nil {
		return err
	}
	e.Name = "db"
	j.Target.Kind, j.Target.Parent, j.Target.Files, j.Target.DBSize = KindFull, "", []fileEntry{e}, e.Size
	if err := c.writeMeta(c.snapDir(j.Target.ID), &j.Target); err != nil {
		return err
	}
	if err := c.hook.at("consolidate.meta"); err != nil {
		return err
	}
	for _, id := range j.Remove {
		if err := c.fs.RemoveAll(c.snapDir(id)); err != nil {
			return err
		}
	}
	if err := c.hook.at("consolidate.pruned"); err != nil {
		return err
	}
	if err := c.fs.Remove(c.journalPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return c.hook.at("consolidate.done")
}

// prune removes every snapshot outside the latest one's chain, each once no
// lease covers it.
func (c *Catalog) prune() error {
	c.consolMu.Lock()
	defer c.consolMu.Unlock()
	c.mu.Lock()
	keep := map[string]bool{}
	if c.head != "" {
		chain, err := c.chainLocked(c.head)
		if err != nil {
			c.mu.Unlock()
			return err
		}
		for _, m := range chain {
			keep[m.ID] = true
		}
	}
	var victims []string
	for id := range c.snaps {
		if !keep[id] {
			victims = append(victims, id)
			delete(c.snaps, id) // unlisted first, so no new lease can cover it
			c.retireLocked(id)
		}
	}
	c.mu.Unlock()
	for _, id := range victims {
		if err := c.guardedRemoveAll(c.snapDir(id)); err != nil {
			return err
		}
	}
	return nil
}

// janitor prunes and consolidates in the background after each new
// snapshot, so that Create and Close never wait for a lease.
func (c *Catalog) janitor() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		if err := c.prune(); err != nil && c.ctx.Err() == nil {
			c.errs.set(fmt.Errorf("prune: %w", err))
		}
		if c.shouldConsolidate() {
			c.Consolidate(c.ctx) //nolint:errcheck // recorded in Stats by Consolidate
		}
	}
}

func (c *Catalog) shouldConsolidate() bool {
	if c.consolidateAfter < 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.head == "" {
		return false
	}
	chain, err := c.chainLocked(c.head)
	return err == nil && len(chain)-1 >= c.consolidateAfter
}
