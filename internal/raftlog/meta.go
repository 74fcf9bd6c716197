package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
)

// metaStore is raft-wal's meta database (metadb.BoltMetaDB: the segment list
// and Raft's stable store, in wal-meta.db), except that this package creates
// the file. BoltMetaDB creates it under a temporary name, renames it into
// place and syncs the directory, failing when the sync fails, which on
// Windows it always does. createMeta does the same with the directory sync
// following the package's policy; BoltMetaDB then finds the file and only
// opens it.
type metaStore struct {
	*metadb.BoltMetaDB
	syncDir func(string) error
}

var _ types.MetaStore = (*metaStore)(nil)

// Load implements types.MetaStore, creating the database first if needed.
func (m *metaStore) Load(dir string) (types.PersistentState, error) {
	if err := createMeta(dir, m.syncDir); err != nil {
		return types.PersistentState{}, fmt.Errorf("create raft log meta database: %w", err)
	}
	return m.BoltMetaDB.Load(dir)
}

// createMeta creates dir's meta database, empty but with raft-wal's buckets,
// unless it exists. A crash part way leaves at most the temporary file, which
// the next call replaces.
func createMeta(dir string, syncDir func(string) error) error {
	final := filepath.Join(dir, metadb.FileName)
	if _, err := os.Stat(final); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp := final + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	db, err := bbolt.Open(tmp, 0o644, nil)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bbolt.Tx) error { // commits with an fsync
		for _, name := range []string{metadb.MetaBucket, metadb.StableBucket} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if syncDir == nil {
		return nil
	}
	return syncDir(dir)
}
