package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// InstallTarget is what an Installer needs of the live database: where its
// file is, and the swap of that file for a restored one (which closes every
// connection, and the streams reading it, first). *sqlitedb.DB implements
// it.
type InstallTarget interface {
	// Path is the database file; the restored file is written next to it.
	Path() string
	// Replace moves src over the database file through fsys.
	Replace(src string, fsys sqlitedb.FileOps) error
}

var _ InstallTarget = (*sqlitedb.DB)(nil)

// liveSwapFence is what an Installer needs of the capture side before it
// swaps the live file. WALCapture implements it.
type liveSwapFence interface {
	// liveReplaced makes the next capture full (why) and forgets the live
	// file as the last checkpoint left it.
	liveReplaced(why string)
	// fenceLiveCopy waits for a copy of the live file in progress and makes
	// every copy of an earlier capture fail.
	fenceLiveCopy()
}

// liveFileLeases is what an Installer needs of the LeaseManager: to swap
// the live database's files only once no backup's lease covers them, new
// backups waiting meanwhile. LeaseManager implements it.
type liveFileLeases interface {
	Exclusive(ctx context.Context, op string, paths []string, fn func() error) error
}

// captureSuperseder is what an Installer needs of the Catalog: to mark
// every capture taken so far as superseded, so that none is stored over
// the installed snapshot. Catalog implements it.
type captureSuperseder interface {
	supersedeCaptures()
}

// ownSnapshots is what an Installer needs of the Catalog to install one of
// the catalogue's own snapshots by moving its files (adopt.go). Catalog
// implements it.
type ownSnapshots interface {
	// ownOffer returns r as an offer of this catalogue.
	ownOffer(r io.Reader) (*pullOffer, bool)
	// adoptable reports whether snapshot id's files can be moved.
	adoptable(id string) bool
	// moveIntoPlace moves snapshot id's database to path and folds its WAL
	// files in; folded says whether any was.
	moveIntoPlace(id, path string) (folded bool, err error)
	// undoAdopt moves the database at path back into snapshot id.
	undoAdopt(id, path string, folded bool) error
	// finishAdopt records that snapshot id became the live database.
	finishAdopt(id string) error
}

// Installer replaces the live database with a snapshot: it restores the
// stream into a complete file next to the live one, verifying it, or, for
// a snapshot this store received from another node, moves that
// snapshot's file there (adopt.go); then it swaps the file in through the
// store's FS. It keeps no state of its own (so it has no lock): the capture
// side and the catalogue record what an install changes for them.
type Installer struct {
	fs      FS
	live    liveSwapFence
	backups liveFileLeases
	ctx     context.Context // the store's: ends a wait for backups when it closes
	catalog captureSuperseder
	own     ownSnapshots
	errs    *lastError
}

func newInstaller(fsys FS, live liveSwapFence, catalog *Catalog, leases liveFileLeases, errs *lastError) *Installer {
	return &Installer{fs: fsys, live: live, backups: leases, ctx: catalog.ctx, catalog: catalog, own: catalog, errs: errs}
}

// Install is FSM.Restore for a database kept by this store's node: it
// restores rc next to db's file, swaps it in with db.Replace (which closes
// every connection first) and makes the next snapshot full. If rc is this
// store's own snapshot, received from another node, its files are moved
// rather than copied. If anything fails before the swap, db is left as it
// was (and a moved snapshot is put back).
func (i *Installer) Install(db InstallTarget, rc io.ReadCloser) error {
	if o, ok := i.own.ownOffer(rc); ok {
		id := o.plan.meta.ID
		if i.own.adoptable(id) {
			o.Close() // release its lease: the move needs the files to itself
			return i.adopt(db, id)
		}
		inline, err := o.inline()
		if err != nil {
			o.Close()
			return err
		}
		rc = inline
	}
	path, err := restoreFS(i.fs, rc, filepath.Dir(db.Path()))
	if err != nil {
		i.errs.set(fmt.Errorf("restore: %w", err))
		return err
	}
	if err := i.swap(db, path); err != nil {
		err = errors.Join(err, removeSQLiteFiles(i.fs, path))
		i.errs.set(err)
		return err
	}
	return nil
}

// adopt installs snapshot id, received from another node, by moving its
// database file next to db's and swapping it in.
func (i *Installer) adopt(db InstallTarget, id string) error {
	path := newRestorePath(filepath.Dir(db.Path()))
	folded, err := i.own.moveIntoPlace(id, path)
	if err != nil {
		err = fmt.Errorf("install snapshot %s: %w", id, err)
		i.errs.set(err)
		return err
	}
	if err := i.swap(db, path); err != nil {
		err = errors.Join(err, i.own.undoAdopt(id, path, folded))
		i.errs.set(err)
		return err
	}
	if err := i.own.finishAdopt(id); err != nil {
		// The live database holds the snapshot; the meta still records the
		// move, which the next start finishes.
		i.errs.set(fmt.Errorf("snapshot %s installed, but recording it failed: %w", id, err))
	}
	return nil
}

// swap makes path the live database: the next capture is full, captures
// not yet persisted are superseded, a copy of the live file in progress is
// waited for, and db.Replace closes every connection and renames path over
// the live file.
func (i *Installer) swap(db InstallTarget, path string) error {
	i.live.liveReplaced("database replaced by a restore")
	i.catalog.supersedeCaptures() // a capture not yet persisted is now stale
	// Wait for a full snapshot's copy of the live file in progress, and make
	// any copy not yet started fail instead of reading the new file.
	i.live.fenceLiveCopy()
	// A backup reads the live files through a lease (LiveBackup): the swap
	// waits for it, as a snapshot file's rename waits for a stream's.
	return i.backups.Exclusive(i.ctx, "install into the live database", livePaths(db.Path()), func() error {
		if err := db.Replace(path, i.fs); err != nil {
			return fmt.Errorf("replace database: %w", err)
		}
		return nil
	})
}
