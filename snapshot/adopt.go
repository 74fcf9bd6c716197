package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// Installing a received snapshot by moving its files (see DESIGN.md,
// "Installing without a second copy"). A follower used to write an
// install's data twice: into its sink, then, restoring, into a new file
// next to the live database. A snapshot received from another node is now
// moved instead: its database file is renamed next to the live one, its WAL
// files (if any, small) are checkpointed into it, and it is swapped in. The
// snapshot then keeps its meta (Raft needs its index, term and
// configuration) but no files (InLiveDB) until the node's next snapshot,
// which is full, replaces it.

// ErrInLiveDB is returned by Open for a snapshot whose files became the
// live database (or are on their way there).
var ErrInLiveDB = errors.New("its files were installed into the live database; the next snapshot (full) replaces it")

// errNotAdoptable says a snapshot cannot be moved into the live database
// (not received, not the head, or already moved).
var errNotAdoptable = errors.New("snapshot cannot be moved into the live database")

// ownOffer returns r as an offer of this catalogue (what Raft's FSM.Restore
// gets on the node that received a snapshot: Raft opens it from this store).
func (c *Catalog) ownOffer(r io.Reader) (*pullOffer, bool) {
	for {
		switch v := r.(type) {
		case *pullOffer:
			return v, v.c == c
		case raft.ReadCloserWrapper:
			r = v.WrappedReadCloser()
		default:
			return nil, false
		}
	}
}

// inline is the offer's snapshot as a data stream over the offer's lease:
// the chain as it is, never an image (Restore checkpoints the chain's WALs
// as it would an image's). Closing it ends the offer.
func (o *pullOffer) inline() (io.ReadCloser, error) {
	plan := o.plan
	plan.image = false
	hdr, err := encodeHeader(plan.header(plan.chain))
	if err != nil {
		return nil, err
	}
	return &stream{lease: o.lease, fsys: o.c.fs, hdr: hdr, files: plan.chain, onClose: o.end}, nil
}

// adoptable reports whether snapshot id can be moved into the live
// database: received from another node, the head, and still holding its
// files.
func (c *Catalog) adoptable(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.snaps[id]
	return ok && c.adoptableLocked(m)
}

func (c *Catalog) adoptableLocked(m *snapMeta) bool {
	return m.Received && !m.InLiveDB && m.AdoptPath == "" && c.head == m.ID && m.Kind == KindFull &&
		len(m.Files) > 0 && m.Files[0].Name == "db"
}

// metaOf returns a copy of snapshot id's meta (with its own Files).
func (c *Catalog) metaOf(id string) (snapMeta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.snaps[id]
	if !ok {
		return snapMeta{}, false
	}
	cp := *m
	cp.Files = append([]fileEntry(nil), m.Files...)
	return cp, true
}

// setMeta records m in the catalogue.
func (c *Catalog) setMeta(m snapMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.snaps[m.ID]; ok {
		c.snaps[m.ID] = &m
	}
}

// moveIntoPlace moves snapshot id's database to path (next to the live
// database) and checkpoints the snapshot's WAL files into it, recording the
// move in its meta first (AdoptPath) so that a crash is repaired at the
// next start. folded reports whether a WAL was (even partly) checkpointed
// into the file. On error the move is undone.
func (c *Catalog) moveIntoPlace(id, path string) (folded bool, err error) {
	dir := c.snapDir(id)
	err = c.leases.Exclusive(c.ctx, "install "+id+" into the live database", []string{dir}, func() error {
		c.mu.Lock()
		m, ok := c.snaps[id]
		adoptable := ok && c.adoptableLocked(m)
		c.mu.Unlock()
		if !adoptable {
			return fmt.Errorf("snapshot %s: %w", id, errNotAdoptable)
		}
		marked, _ := c.metaOf(id)
		marked.AdoptPath = path
		if err := c.writeMeta(dir, &marked); err != nil {
			return err
		}
		c.setMeta(marked) // Open refuses it from now on
		if err := c.moveAndFold(dir, marked, path, &folded); err != nil {
			return errors.Join(err, c.undoAdoptFiles(id, path, folded))
		}
		return nil
	})
	return folded, err
}

func (c *Catalog) moveAndFold(dir string, m snapMeta, path string, folded *bool) error {
	if err := c.hook.at("adopt.marked"); err != nil {
		return err
	}
	if err := c.fs.Rename(filepath.Join(dir, "db"), path); err != nil {
		return err
	}
	if err := c.hook.at("adopt.moved"); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, f := range m.Files[1:] {
		*folded = true
		if err := c.foldWAL(filepath.Join(dir, f.Name), f, path, buf); err != nil {
			return err
		}
	}
	return nil
}

// foldWAL copies the WAL file src next to the database at path, verifying
// it, and checkpoints it in.
func (c *Catalog) foldWAL(src string, e fileEntry, path string, buf []byte) error {
	in, err := c.fs.Open(src)
	if err != nil {
		return err
	}
	err = writeVerified(c.fs, in, path+"-wal", e, buf, true)
	in.Close()
	if err != nil {
		return err
	}
	return sqlitedb.CheckpointFile(path)
}

// undoAdopt puts snapshot id's database back after a failed swap (see
// undoAdoptFiles).
func (c *Catalog) undoAdopt(id, path string, folded bool) error {
	return c.leases.Exclusive(c.ctx, "undo install of "+id, []string{c.snapDir(id)}, func() error {
		return c.undoAdoptFiles(id, path, folded)
	})
}

// undoAdoptFiles moves the database at path back into snapshot id and
// clears the move from its meta. If WAL files were checkpointed into it,
// its sha256 is recorded anew: applying the snapshot's WAL files again, in
// order, still yields the snapshot's content (each frame is a page image,
// so checkpointing a WAL twice changes nothing). If neither the file nor
// the snapshot's own database exists, the swap happened after all and the
// move is finished instead.
func (c *Catalog) undoAdoptFiles(id, path string, folded bool) error {
	m, ok := c.metaOf(id)
	if !ok {
		return fmt.Errorf("snapshot %s: not found", id)
	}
	return c.restoreMoved(c.snapDir(id), &m, path, folded)
}

// restoreMoved is undoAdoptFiles on a meta (also used by crash recovery,
// before the catalogue holds it).
func (c *Catalog) restoreMoved(dir string, m *snapMeta, path string, folded bool) error {
	db := filepath.Join(dir, "db")
	if err := removeSQLiteSidecars(c.fs, path); err != nil {
		return err
	}
	moved, err := c.exists(path)
	if err != nil {
		return err
	}
	inPlace, err := c.exists(db)
	if err != nil {
		return err
	}
	if !moved && !inPlace {
		return c.markInLiveDB(dir, m)
	}
	if moved && !inPlace {
		if err := c.fs.Rename(path, db); err != nil {
			return err
		}
	}
	m.AdoptPath = ""
	if folded {
		e, err := c.hashFile(db)
		if err != nil {
			return err
		}
		e.Name = "db"
		m.Files[0] = e
	}
	if err := c.writeMeta(dir, m); err != nil {
		return err
	}
	c.setMeta(*m)
	return nil
}

// finishAdopt records that snapshot id's files became the live database.
func (c *Catalog) finishAdopt(id string) error {
	return c.leases.Exclusive(c.ctx, "finish install of "+id, []string{c.snapDir(id)}, func() error {
		m, ok := c.metaOf(id)
		if !ok {
			return fmt.Errorf("snapshot %s: not found", id)
		}
		return c.markInLiveDB(c.snapDir(id), &m)
	})
}

// markInLiveDB rewrites m as a snapshot with no files (InLiveDB) and
// removes what is left of its files.
func (c *Catalog) markInLiveDB(dir string, m *snapMeta) error {
	files := m.Files
	m.Files, m.AdoptPath, m.InLiveDB = nil, "", true
	if err := c.writeMeta(dir, m); err != nil {
		return err
	}
	c.setMeta(*m)
	var errs []error
	for _, f := range files {
		if err := c.fs.Remove(filepath.Join(dir, f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Harmless: the directory goes when a newer snapshot prunes it.
		c.log.Warn("could not remove an installed snapshot's leftover files", "dir", dir, "error", err)
	}
	return nil
}

// recoverAdopt finishes or undoes, at start, a move into the live database
// that a crash interrupted: the database still in the snapshot, or back
// from AdoptPath, keeps the snapshot (rehashed if WAL files may have been
// checkpointed into it); neither means the swap completed.
func (c *Catalog) recoverAdopt(dir string, m *snapMeta) error {
	c.log.Warn("finishing an interrupted install into the live database", "dir", dir, "path", m.AdoptPath)
	return c.restoreMoved(dir, m, m.AdoptPath, len(m.Files) > 1)
}

// removeSQLiteSidecars removes what SQLite may keep next to a database
// file (not the file itself).
func removeSQLiteSidecars(fsys FS, path string) error {
	var errs []error
	for _, p := range []string{path + "-wal", path + "-shm", path + "-journal"} {
		if err := fsys.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
