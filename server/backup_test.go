package server_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
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

// backupToFile backs n up into a file and returns its path and the number
// of messages the backup took.
func backupToFile(t *testing.T, n *servertest.Node) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stream, err := n.DB().Backup(ctx(t), &sqlraftv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return path, msgs
		}
		if err != nil {
			t.Fatalf("backup via %s: %v", n.ID, err)
		}
		msgs++
		if _, err := f.Write(msg.GetData()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupWithTheSmallestMessageLimit: with --max-message-size at its
// minimum, a backup of a database of several megabytes still arrives whole
// (its 1 MiB messages fit the smallest response limit), in about one
// message per MiB.
func TestBackupWithTheSmallestMessageLimit(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = msglimit.Minimum }})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE t(v BLOB)"))
	exec(t, n, st("INSERT INTO t SELECT randomblob(100000) FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 60) SELECT i FROM s)"))
	sum := c.WaitConverged(10 * time.Second)
	path, msgs := backupToFile(t, n)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if max := int(fi.Size()>>20) + 2; msgs > max {
		t.Errorf("a backup of %d bytes took %d messages, want at most %d", fi.Size(), msgs, max)
	}
	db, err := sqlitedb.Open(path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, got, err := db.Checksum(context.Background()); err != nil || got != sum {
		t.Fatalf("backup checksum %s (%v), want %s", got, err, sum)
	}
}

// TestStalledBackupReleasesItsLease: a backup client that stops reading
// has its call ended after the stream send timeout (here 2 s, shorter
// than the lease's own idle timeout), which ends the backup and releases
// its snapshot lease, so consolidation can run again; the client, reading
// on, gets DEADLINE_EXCEEDED.
func TestStalledBackupReleasesItsLease(t *testing.T) {
	const timeout = 2 * time.Second
	c := servertest.New(t, 1, servertest.Options{Server: func(_ int, o *server.Options) { o.StreamSendTimeout = timeout }})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE t(v BLOB)"))
	for i := 0; i < 4; i++ { // 40 MB: more than the connection's windows and the read-ahead hold
		exec(t, n, st("INSERT INTO t SELECT randomblob(100000) FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 100) SELECT i FROM s)"))
	}
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := n.DB().Backup(sctx, &sqlraftv1.BackupRequest{})
	if err == nil {
		_, err = stream.Recv() // the backup is running; now stop reading it
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(60*time.Second, func() error {
		if held := n.Raft.Snapshots().Stats().LeasesHeld; held != 0 {
			return errorf("the node still holds %d snapshot leases for a client that stopped reading", held)
		}
		return nil
	})
	for err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("the stalled backup ended with %v, want DEADLINE_EXCEEDED", err)
	}
}
