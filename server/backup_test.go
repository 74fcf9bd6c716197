package server_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestBackupIsAConsistentSQLiteFile backs up through a follower and the
// leader and checks each file's content against the cluster's checksum.
func TestBackupIsAConsistentSQLiteFile(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"))
	for i := 0; i < 20; i++ {
		// Rows 50i+1 .. 50i+50, inserted once however often the request is
		// repeated.
		execRepeat(t, leader, servertest.Idempotent, st("INSERT OR IGNORE INTO t(id, v) SELECT ? + i, randomblob(1000) FROM "+
			"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50) SELECT i FROM n)", integer(int64(50*i))))
	}
	sum := c.WaitConverged(10 * time.Second)
	for _, n := range []*servertest.Node{c.Followers()[0], leader} {
		path := filepath.Join(t.TempDir(), "backup.db")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := n.DB().Backup(ctx(t), &sqlraftv1.BackupRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var index uint64
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("backup via %s: %v", n.ID, err)
			}
			if msg.GetHeader() != nil {
				index = msg.GetHeader().GetRaftIndex()
			}
			f.Write(msg.GetData())
		}
		f.Close()
		db, err := sqlitedb.Open(path, sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pos, got, err := db.Checksum(context.Background())
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != sum || pos.Index == 0 || index < pos.Index {
			t.Errorf("backup via %s: checksum %s… at %d (header %d), want %s…", n.ID, got[:8], pos.Index, index, sum[:8])
		}
		if held := n.Raft.Snapshots().Stats().LeasesHeld; held != 0 {
			t.Errorf("%s still holds %d leases after the backup", n.ID, held)
		}
	}
}
