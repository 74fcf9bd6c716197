package server_test

import (
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestLaggingFollowerInstallsSnapshot stops a follower, writes until the
// leader has truncated its log past the follower's position, and restarts
// the follower: it can only catch up by installing a snapshot.
func TestLaggingFollowerInstallsSnapshot(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 20, 5, 100*time.Millisecond
	}})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE t(v)"))
	c.WaitConverged(10 * time.Second)
	lag := indexOf(c, c.Followers()[0])
	c.Stop(lag)
	lagIndex := uint64(0)
	for i := 0; ; i++ {
		exec(t, leader, st("INSERT INTO t VALUES(?)", integer(int64(i))))
		if i > 50 && leader.Raft.Status().FirstLogIndex > lagIndex+10 {
			break
		}
		if lagIndex == 0 {
			lagIndex = leader.Raft.Status().CommitIndex
		}
		if i > 2000 {
			t.Fatal("leader never truncated its log")
		}
	}
	rows := count(t, leader, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE)
	c.Restart(lag)
	c.WaitConverged(30 * time.Second)
	if got := c.Nodes[lag].Raft.FSM().Restores(); got == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	if got := count(t, c.Nodes[lag], "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE); got != rows {
		t.Fatalf("restarted follower has %d rows, want %d", got, rows)
	}
	// It restarts again from its own state, not from scratch.
	c.Stop(lag)
	c.Restart(lag)
	c.WaitConverged(30 * time.Second)
}
