package raftnode_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// installRows × installRowBytes is the database the paused-follower test
// builds (about 3 MB), and installUpdates the small updates of the same
// rows it makes while the follower is stopped.
const (
	installRows     = 3000
	installRowBytes = 1000
	installUpdates  = 2000
)

// TestPausedFollowerInstallSizedLikeTheDatabase is issue #7's black-box
// finding, measured: three nodes on real gRPC, a ~3 MB database, one
// follower stopped while thousands of small updates rewrite the same rows
// (so the WAL holds many frames per page) and the leader snapshots and
// truncates its log past the follower. When the follower comes back it
// must be sent a snapshot about the size of the database, not of the WAL
// history.
func TestPausedFollowerInstallSizedLikeTheDatabase(t *testing.T) {
	const lag = 2
	var received atomic.Int64
	c := newCluster(t, 3, func(i int, cfg *raftnode.Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 200, 50, 100*time.Millisecond
		cfg.Snapshot = snapshot.Options{FS: snapshot.NewStrictFS()}
		if i == lag {
			cfg.Snapshot.OnReceive = func(n int) { received.Add(int64(n)) }
		}
	})
	if c.leader() == c.nodes[lag] {
		if err := c.nodes[lag].Raft.TransferLeadership(context.Background(), c.nodes[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.leader()
	execute(t, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
	for i := 0; i < installRows; i += 100 {
		execute(t, c, fmt.Sprintf(`INSERT INTO t(id, n, v) SELECT %d + i, 0, randomblob(%d)
			FROM (WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < 99) SELECT i FROM s)`,
			i, installRowBytes))
	}
	c.waitConverged(30 * time.Second)
	lagIndex := c.nodes[lag].Raft.Status().AppliedIndex
	c.stop(lag)
	updateSameRows(t, c, installUpdates)
	c.eventually(30*time.Second, func() error {
		if first := leader.Raft.Status().FirstLogIndex; first <= lagIndex+1 {
			execute(t, c, "UPDATE t SET n = n + 1 WHERE id = 1")
			return fmt.Errorf("leader's log still starts at %d, follower is at %d", first, lagIndex)
		}
		return nil
	})
	c.restart(lag)
	c.eventually(60*time.Second, func() error {
		if c.nodes[lag].Raft.FSM().Restores() == 0 {
			return fmt.Errorf("follower has not installed a snapshot yet")
		}
		return nil
	})
	fi, err := os.Stat(filepath.Join(c.nodes[lag].Dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	got, dbSize := received.Load(), fi.Size()
	var chain []string
	for _, in := range leader.Raft.Snapshots().Stats().Snapshots {
		chain = append(chain, fmt.Sprintf("%s %d", in.Kind, in.Size))
	}
	c.waitConverged(60 * time.Second)
	t.Logf("install after %d updates of the same rows: received %d bytes for a %d-byte database (%.2fx); "+
		"leader's snapshots after the install, newest first: %v", installUpdates, got, dbSize, float64(got)/float64(dbSize), chain)
	if limit := dbSize + dbSize/10 + 64<<10; got > limit {
		t.Fatalf("install of %d bytes for a %d-byte database (limit %d)", got, dbSize, limit)
	}
}

// updateSameRows makes n single-row updates (each its own request, so
// mostly its own SQLite transaction) cycling over the first 64 rows, from
// four concurrent clients. Update i sets n to i: repeated, it leaves what
// it left the first time (but for v's random bytes, which nothing checks),
// so it is retried when leadership moves while it is in flight.
func updateSameRows(t *testing.T, c *testCluster, n int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				err := tryExecute(c, true, fmt.Sprintf("UPDATE t SET n = %d, v = randomblob(%d) WHERE id = %d",
					i, installRowBytes, i%64))
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
