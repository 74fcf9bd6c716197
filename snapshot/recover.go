package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// recover brings the directory to a consistent state after any
// interruption: it finishes an interrupted consolidation, clears
// temporary files (unfinished captures and sinks), drops snapshots whose
// meta or files are missing or whose chain is broken, and keeps only the
// newest valid chain.
func (c *Catalog) recover() error {
	for _, d := range []string{filepath.Join(c.dir, "snapshots"), c.tmpDir()} {
		if err := c.fs.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.fs.RemoveAll(c.tmpDir()); err != nil {
		return err
	}
	if err := c.fs.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return err
	}
	if err := c.fs.Remove(c.journalPath() + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := c.recoverJournal(); err != nil {
		return err
	}
	if err := c.loadSnapshots(); err != nil {
		return err
	}
	c.pickHead()
	for id := range c.snaps {
		if !c.inHeadChain(id) {
			c.log.Info("removing snapshot outside the latest chain", "id", id)
			delete(c.snaps, id)
			if err := c.fs.RemoveAll(c.snapDir(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Catalog) recoverJournal() error {
	ok, err := c.exists(c.journalPath())
	if err != nil || !ok {
		return err
	}
	f, err := c.fs.Open(c.journalPath())
	if err != nil {
		return err
	}
	var j journal
	err = json.NewDecoder(f).Decode(&j)
	f.Close()
	if err != nil {
		// writeFileAtomic never leaves a torn journal; if it is unreadable
		// the consolidation never started changing files.
		c.log.Warn("dropping unreadable consolidation journal", "error", err)
		return c.fs.Remove(c.journalPath())
	}
	c.log.Info("finishing an interrupted consolidation", "target", j.Target.ID)
	if err := c.applyJournal(&j); err != nil {
		c.log.Error("cannot finish interrupted consolidation; its chain will be dropped", "error", err)
		return c.fs.Remove(c.journalPath())
	}
	return nil
}

// loadSnapshots reads every snapshot directory, removing those that are
// incomplete.
func (c *Catalog) loadSnapshots() error {
	entries, err := c.fs.ReadDir(filepath.Join(c.dir, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := c.snapDir(e.Name())
		m, err := c.readMeta(dir)
		if err == nil && m.AdoptPath != "" {
			err = c.recoverAdopt(dir, m)
		}
		if err == nil {
			err = c.checkFiles(dir, m)
		}
		if err != nil {
			c.log.Warn("removing incomplete snapshot", "dir", dir, "error", err)
			if err := c.fs.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		c.snaps[m.ID] = m
	}
	return nil
}

// checkFiles checks that a snapshot's files exist with their recorded
// sizes (content is verified by sha256 whenever it is streamed).
func (c *Catalog) checkFiles(dir string, m *snapMeta) error {
	if m.ID != filepath.Base(dir) {
		return fmt.Errorf("meta id %q in directory %s", m.ID, dir)
	}
	for _, f := range m.Files {
		fi, err := c.fs.Stat(filepath.Join(dir, f.Name))
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
func (c *Catalog) pickHead() {
	c.head = ""
	for _, m := range c.sortedLocked() {
		if _, err := c.chainLocked(m.ID); err != nil {
			c.log.Warn("snapshot chain broken", "id", m.ID, "error", err)
			continue
		}
		c.head, c.lastIdx = m.ID, m.Index
		return
	}
}

func (c *Catalog) inHeadChain(id string) bool {
	if c.head == "" {
		return false
	}
	chain, _ := c.chainLocked(c.head)
	for _, m := range chain {
		if m.ID == id {
			return true
		}
	}
	return false
}
