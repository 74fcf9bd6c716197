package raftnode_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// TestBackupLeavesNothingInDataDir backs up a node several times (once with
// a send that fails, as when the client goes away) and then lists its whole
// data directory: no backup or restore file or directory is left, the
// snapshot store's tmp/ is empty and no snapshot file is still open. The
// store runs on StrictFS, which refuses to remove an open file as Windows
// does.
func TestBackupLeavesNothingInDataDir(t *testing.T) {
	strict := snapshot.NewStrictFS()
	c := newCluster(t, 1, func(_ int, cfg *raftnode.Config) {
		cfg.Snapshot = snapshot.Options{FS: strict}
	})
	n := c.leader()
	execute(t, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	for i := 0; i < 5; i++ {
		execute(t, c, "INSERT INTO t(v) SELECT randomblob(1000) FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i < 100) SELECT i FROM k)")
	}
	sum := c.waitConverged(30 * time.Second)
	out := filepath.Join(t.TempDir(), "backup.db")
	for i, fail := range []bool{false, true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := n.Raft.Backup(ctx, func(r io.Reader, index uint64) error {
			if fail {
				return errors.New("client went away")
			}
			return writeFile(out, r)
		})
		cancel()
		if fail != (err != nil) {
			t.Fatalf("backup %d (send fails: %v): %v", i, fail, err)
		}
		if left := backupLeftovers(t, n.Dir); len(left) != 0 {
			t.Fatalf("backup %d left %v in the data directory", i, left)
		}
		if open := strict.OpenHandles(); len(open) != 0 {
			t.Fatalf("backup %d left snapshot files open: %v", i, open)
		}
	}
	db, err := sqlitedb.Open(out, sqlitedb.Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, got, err := db.Checksum(context.Background()); err != nil || got != sum {
		t.Fatalf("backup checksum %s (%v), want %s", got, err, sum)
	}
}

// backupLeftovers lists what a backup may leave in a data directory: any
// backup-* or restore-* entry, and anything in the snapshot store's tmp/.
func backupLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if strings.HasPrefix(name, "backup-") || strings.HasPrefix(name, "restore-") ||
			strings.HasPrefix(rel, "snapshots/tmp/") {
			left = append(left, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
