package raftnode_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// lagCluster is three nodes on real gRPC whose snapshot stores run on
// StrictFS, with frequent snapshots and a short log, a send hook on every
// node that can slow down the leader's side of an install, and a receive
// hook on node lag that counts what it gets.
type lagCluster struct {
	*testCluster
	lag      int
	slow     atomic.Bool
	received atomic.Int64
}

func newLagCluster(t *testing.T) *lagCluster {
	lc := &lagCluster{lag: 2}
	lc.testCluster = newCluster(t, 3, func(i int, cfg *raftnode.Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 64, 16, 100*time.Millisecond
		cfg.Snapshot = snapshot.Options{FS: snapshot.NewStrictFS(), LeaseIdleTimeout: 5 * time.Second,
			OnSend: func(int) {
				if lc.slow.Load() {
					time.Sleep(20 * time.Millisecond)
				}
			}}
		if i == lc.lag {
			cfg.Snapshot.OnReceive = func(n int) { lc.received.Add(int64(n)) }
		}
	})
	if lc.leader() == lc.nodes[lc.lag] {
		if err := lc.nodes[lc.lag].Raft.TransferLeadership(context.Background(), lc.nodes[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	return lc
}

// lagBehind stops node lag and writes (about 2 MB) until the leader's log
// no longer holds its position: it can only come back by an install.
func (lc *lagCluster) lagBehind(t *testing.T) *testNode {
	leader := lc.leader()
	execute(t, lc.testCluster, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	lc.waitConverged(30 * time.Second)
	lagIndex := lc.nodes[lc.lag].Raft.Status().AppliedIndex
	lc.stop(lc.lag)
	for i := 0; i < 20; i++ {
		execute(t, lc.testCluster, `INSERT INTO t(v) SELECT randomblob(1000)
			FROM (WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < 99) SELECT i FROM s)`)
	}
	lc.eventually(30*time.Second, func() error {
		if first := leader.Raft.Status().FirstLogIndex; first <= lagIndex+1 {
			execute(t, lc.testCluster, "INSERT INTO t(v) VALUES(x'00')")
			return fmt.Errorf("leader's log still starts at %d, node is at %d", first, lagIndex)
		}
		return nil
	})
	return leader
}

func (lc *lagCluster) waitInstalled() {
	lc.eventually(60*time.Second, func() error {
		if lc.nodes[lc.lag].Raft.FSM().Restores() == 0 {
			return fmt.Errorf("node %d has not installed a snapshot yet", lc.lag)
		}
		return nil
	})
}

// TestInstallByPull: a follower that can only catch up by an install gets
// it by pull over gRPC: it converges; the leader ends with no lease and no
// open offer; the follower's received snapshot, moved into its database,
// is soon replaced by a full snapshot of its own, so that its store can
// send and restore again.
func TestInstallByPull(t *testing.T) {
	lc := newLagCluster(t)
	leader := lc.lagBehind(t)
	lc.restart(lc.lag)
	lc.waitInstalled()
	lc.waitConverged(60 * time.Second)
	lag := lc.nodes[lc.lag].Raft
	lc.eventually(30*time.Second, func() error {
		latest, ok := lag.Snapshots().Latest()
		if !ok || latest.InLiveDB || latest.Kind != snapshot.KindFull {
			return fmt.Errorf("follower's newest snapshot is %+v", latest)
		}
		if st := leader.Raft.Snapshots().Stats(); st.LeasesHeld != 0 || st.Offers != 0 || st.LastError != "" {
			return fmt.Errorf("leader's store: %d leases, %d offers, last error %q", st.LeasesHeld, st.Offers, st.LastError)
		}
		return nil
	})
	if st := lag.Snapshots().Stats(); st.LastError != "" {
		t.Fatalf("follower's store: %s", st.LastError)
	}
	t.Logf("received %d bytes", lc.received.Load())
}

// TestLeaderDiesMidPull: the leader stops while a slowed follower pulls a
// snapshot from it. The follower's install fails cleanly (its database and
// store are as before), a new leader is elected, and the follower catches
// up from it.
func TestLeaderDiesMidPull(t *testing.T) {
	lc := newLagCluster(t)
	leader := lc.lagBehind(t)
	before := lc.received.Load()
	lc.slow.Store(true)
	lc.start(lc.lag)
	lc.eventually(30*time.Second, func() error {
		if lc.received.Load()-before < 64<<10 {
			return fmt.Errorf("pull not under way yet")
		}
		return nil
	})
	for i, n := range lc.nodes {
		if n == leader {
			lc.stop(i)
		}
	}
	lc.slow.Store(false)
	if restores := lc.nodes[lc.lag].Raft.FSM().Restores(); restores != 0 {
		t.Fatalf("the follower installed %d snapshots from a pull cut short", restores)
	}
	lc.leader()
	lc.waitInstalled()
	lc.waitConverged(60 * time.Second)
	for i, n := range lc.nodes {
		if n == leader {
			lc.restart(i)
		}
	}
	lc.waitConverged(60 * time.Second)
}

// TestFollowerBackAfterOutageCatchesUpQuickly: a follower stopped for
// half a minute while the leader keeps writing has caught up a few seconds
// after it restarts. It took 7 to 37 s (sqlraftd processes, 45 s down)
// before the Raft connections capped their reconnect back-off and
// replication calls waited for their peer (see reconnect.go); the bound
// here is generous for a loaded machine and still well below that.
func TestFollowerBackAfterOutageCatchesUpQuickly(t *testing.T) {
	const lag, bound = 2, 8 * time.Second
	c := newCluster(t, 3, nil)
	if c.leader() == c.nodes[lag] {
		if err := c.nodes[lag].Raft.TransferLeadership(context.Background(), c.nodes[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	execute(t, c, "CREATE TABLE t(v)")
	c.waitConverged(30 * time.Second)
	c.stop(lag)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		execute(t, c, "INSERT INTO t VALUES(randomblob(100))")
		time.Sleep(20 * time.Millisecond)
	}
	target := c.leader().Raft.Status().AppliedIndex
	start := time.Now()
	c.start(lag)
	c.eventually(clusterTimeout, func() error {
		if got := c.nodes[lag].Raft.Status().AppliedIndex; got < target {
			return fmt.Errorf("follower at %d, leader at %d", got, target)
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("caught up %v after its restart", took.Round(time.Millisecond))
	if took > bound {
		t.Fatalf("the follower caught up %v after its restart (bound %v)", took, bound)
	}
}
