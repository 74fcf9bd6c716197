package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
	"github.com/sqlraft/sqlraft/snapshot"
)

// seedCluster is the setting of rqlite's issue 1774 ("the seed"): three
// nodes on real gRPC and real files, every snapshot store on StrictFS (a
// rename or remove of an open file fails as on Windows), snapshots every
// few dozen entries, a send hook on every node that can slow down the
// leader's side of an install (the follower pulls the data from it), and a
// receive hook on the lagging node that counts what it gets.
type seedCluster struct {
	*servertest.Cluster
	lag      int
	slow     atomic.Bool  // throttle what a leader sends
	received atomic.Int64 // bytes it received
	first    atomic.Int64 // unix nanos of the first received chunk
}

func newSeedCluster(t *testing.T) *seedCluster {
	sc := &seedCluster{lag: 2}
	sc.Cluster = servertest.New(t, 3, servertest.Options{Configure: func(i int, cfg *raftnode.Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 24, 8, 100*time.Millisecond
		cfg.Snapshot = snapshot.Options{FS: snapshot.NewStrictFS(), ConsolidateAfter: 3, LeaseIdleTimeout: 5 * time.Second,
			OnSend: sc.onSend}
		if i == sc.lag {
			cfg.Snapshot.OnReceive = sc.onReceive
		}
	}})
	// Node 0 bootstraps and leads; make sure the lagging node is a follower.
	if sc.Leader() == sc.Nodes[sc.lag] {
		if err := sc.Nodes[sc.lag].Raft.TransferLeadership(context.Background(), sc.Nodes[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

func (sc *seedCluster) onReceive(n int) {
	sc.first.CompareAndSwap(0, time.Now().UnixNano())
	sc.received.Add(int64(n))
}

// onSend slows the leader's reading of what an install sends (16 KiB at a
// time while a hook is set), so that its lease is held for the seconds the
// install lasts.
func (sc *seedCluster) onSend(int) {
	if sc.slow.Load() {
		time.Sleep(30 * time.Millisecond)
	}
}

// writer writes continuously through the leader until stop is closed and
// counts acknowledged writes.
func writer(t *testing.T, c *servertest.Cluster, stop <-chan struct{}, acked *atomic.Int64, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		n := c.Leader()
		_, err := n.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
			st("INSERT INTO w(v) VALUES(?)", integer(int64(i)))}})
		if err == nil {
			acked.Add(1)
		}
	}
}

// lagBehind stops the lagging node, then writes (a few MB) until the
// leader's log no longer holds the node's position.
func (sc *seedCluster) lagBehind(t *testing.T) *servertest.Node {
	leader := sc.Leader()
	exec(t, leader, st("CREATE TABLE IF NOT EXISTS big(b BLOB)"), st("CREATE TABLE IF NOT EXISTS w(v INTEGER)"))
	sc.WaitConverged(10 * time.Second)
	lagIndex := sc.Nodes[sc.lag].Raft.Status().AppliedIndex
	sc.Stop(sc.lag)
	for i := 0; i < 30; i++ {
		exec(t, leader, st("INSERT INTO big SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) SELECT i FROM n)"))
	}
	sc.Eventually(20*time.Second, func() error {
		exec(t, leader, st("INSERT INTO w(v) VALUES(-1)"))
		if first := leader.Raft.Status().FirstLogIndex; first <= lagIndex+1 {
			return fmt.Errorf("leader's log still starts at %d, node is at %d", first, lagIndex)
		}
		return nil
	})
	return leader
}

func TestSeedScenarioSlowInstallDuringSnapshots(t *testing.T) {
	sc := newSeedCluster(t)
	leader := sc.lagBehind(t)
	store := leader.Raft.Snapshots()
	sc.slow.Store(true)
	sc.Restart(sc.lag)
	// Wait for the stream to begin, then watch the leader while it lasts.
	sc.Eventually(20*time.Second, func() error {
		if sc.first.Load() == 0 {
			return fmt.Errorf("no install stream yet")
		}
		return nil
	})
	before, firstLogBefore := store.Stats(), leader.Raft.Status().FirstLogIndex
	stop := make(chan struct{})
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go writer(t, sc.Cluster, stop, &acked, &wg)
	// The install's data comes by pull: the leader holds its lease while it
	// reads the files (slowly, here), and releases it once it has read the
	// last byte, which may be before the follower has taken it all. What
	// happened during the install is recorded until its end; a
	// consolidation must not complete while the lease is held.
	var during snapshot.Stats
	var firstLogDuring uint64
	heldSince := before.LeasesHeld > 0
	lag := sc.Nodes[sc.lag].Raft
	for lag.FSM().Restores() == 0 {
		st := store.Stats()
		if st.LastError != "" {
			t.Errorf("leader snapshot error during the stream: %s", st.LastError)
		}
		during, firstLogDuring = st, leader.Raft.Status().FirstLogIndex
		if heldSince = heldSince && st.LeasesHeld > 0; heldSince && st.Consolidations != before.Consolidations {
			t.Errorf("a consolidation completed while the install held its lease (%d -> %d)", before.Consolidations, st.Consolidations)
		}
		if time.Since(time.Unix(0, sc.first.Load())) > 60*time.Second {
			t.Fatal("install did not finish within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	streamSecs := time.Since(time.Unix(0, sc.first.Load())).Seconds()
	sc.slow.Store(false)
	close(stop)
	wg.Wait()
	t.Logf("stream of %d bytes took %.1fs; during it the leader took %d snapshots, acknowledged %d writes, log start %d -> %d",
		sc.received.Load(), streamSecs, during.Created-before.Created, acked.Load(), firstLogBefore, firstLogDuring)
	if streamSecs < 2 || during.Created-before.Created < 5 {
		t.Errorf("want a stream of several seconds with >= 5 snapshots during it; got %.1fs, %d", streamSecs, during.Created-before.Created)
	}
	if firstLogDuring <= firstLogBefore {
		t.Errorf("leader's log start did not advance during the stream (%d -> %d)", firstLogBefore, firstLogDuring)
	}
	if during.LeaseWaits == 0 && during.Created-before.Created >= 3 {
		t.Logf("note: no operation had to wait for the lease")
	}
	sum := sc.WaitConverged(30 * time.Second)
	sc.Eventually(30*time.Second, func() error {
		// Consolidation, which waits for the lease, has run since the
		// install began (during it, once the leader had read the files, or
		// after it), and no lease is left.
		if st := store.Stats(); st.Consolidations == before.Consolidations || st.LeasesHeld != 0 {
			return fmt.Errorf("waiting for consolidation after the stream (held %d, consolidations %d)", st.LeasesHeld, st.Consolidations)
		}
		return nil
	})
	if st := store.Stats(); st.LastError != "" {
		t.Errorf("leader snapshot error: %s", st.LastError)
	}
	t.Logf("converged at %s", sum[:12])
}

func TestSeedScenarioFollowerCutOffMidStream(t *testing.T) {
	sc := newSeedCluster(t)
	leader := sc.lagBehind(t)
	store := leader.Raft.Snapshots()
	sc.slow.Store(true)
	sc.Restart(sc.lag)
	sc.Eventually(20*time.Second, func() error {
		if sc.received.Load() < 64<<10 || store.Stats().LeasesHeld == 0 {
			return fmt.Errorf("stream not under way yet")
		}
		return nil
	})
	// The follower dies mid-stream; the leader's lease must go within the
	// keepalive bound, and snapshots go on.
	cut := time.Now()
	sc.Stop(sc.lag)
	bound := raftnode.RaftKeepaliveTime + raftnode.RaftKeepaliveTimeout + 2*time.Second
	sc.Eventually(bound, func() error {
		if held := store.Stats().LeasesHeld; held != 0 {
			return fmt.Errorf("%d leases still held %v after the cut", held, time.Since(cut))
		}
		return nil
	})
	t.Logf("lease released %v after the follower was cut off", time.Since(cut).Round(time.Millisecond))
	// The next attempt, at full speed, succeeds.
	sc.slow.Store(false)
	sc.Restart(sc.lag)
	sc.WaitConverged(60 * time.Second)
	if sc.Nodes[sc.lag].Raft.FSM().Restores() == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	if st := store.Stats(); st.LastError != "" {
		t.Errorf("leader snapshot error: %s", st.LastError)
	}
}
