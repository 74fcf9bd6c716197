package snapshot

import (
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

// captureSuperseder is what an Installer needs of the Catalog: to mark
// every capture taken so far as superseded, so that none is stored over
// the installed snapshot. Catalog implements it.
type captureSuperseder interface {
	supersedeCaptures()
}

// Installer replaces the live database with a snapshot stream: it restores
// the stream into a complete file next to the live one, verifying it, and
// swaps it in through the store's FS. It keeps no state of its own (so it
// has no lock): the capture side and the catalogue record what an install
// changes for them.
type Installer struct {
	fs      FS
	live    liveSwapFence
	catalog captureSuperseder
	errs    *lastError
}

func newInstaller(fsys FS, live liveSwapFence, catalog captureSuperseder, errs *lastError) *Installer {
	return &Installer{fs: fsys, live: live, catalog: catalog, errs: errs}
}

// Install is FSM.Restore for a database kept by this store's node: it
// restores rc next to db's file, swaps it in with db.Replace (which closes
// every connection first) and makes the next snapshot full. If anything
// fails before the swap, db is left as it was.
func (i *Installer) Install(db InstallTarget, rc io.ReadCloser) error {
	path, err := restoreFS(i.fs, rc, filepath.Dir(db.Path()))
	if err != nil {
		i.errs.set(fmt.Errorf("restore: %w", err))
		return err
	}
	i.live.liveReplaced("database replaced by a restore")
	i.catalog.supersedeCaptures() // a capture not yet persisted is now stale
	// Wait for a full snapshot's copy of the live file in progress, and make
	// any copy not yet started fail instead of reading the new file.
	i.live.fenceLiveCopy()
	if err := db.Replace(path, i.fs); err != nil {
		err = errors.Join(fmt.Errorf("replace database: %w", err), removeSQLiteFiles(i.fs, path))
		i.errs.set(err)
		return err
	}
	return nil
}
