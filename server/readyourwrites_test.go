package server_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

const none = sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE

// TestReadYourWrites runs min_raft_index reads on one 3-node cluster: a
// follower cut off from the leader waits for the write's index and answers
// once it has caught up; a read names an index that comes later and waits
// for it; an index that never comes fails with INDEX_NOT_APPLIED at the
// deadline (and at --max-query-time without one); a cancelled read stops
// waiting.
func TestReadYourWrites(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) {
		cfg.MaxQueryTime = 3 * time.Second
	}})
	t.Cleanup(c.Close)
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)"))
	follower := c.Followers()[0]
	t.Run("LaggingFollowerWaits", func(t *testing.T) { testLaggingFollowerWaits(t, c, leader, follower) })
	t.Run("LaterIndex", func(t *testing.T) { testLaterIndex(t, c, leader, follower) })
	t.Run("IndexNotApplied", func(t *testing.T) { testIndexNotApplied(t, leader, follower) })
	t.Run("Cancelled", func(t *testing.T) { testIndexWaitCancelled(t, c, follower) })
	t.Run("IndexOfANoOp", func(t *testing.T) { testIndexOfANoOp(t, c, leader, follower) })
}

// testIndexOfANoOp: after a leadership transfer the new leader's last
// entries are its no-op and barrier, which the FSM never sees, and a
// LINEARIZABLE read's header names that commit index. A NONE read on
// another node with it as min_raft_index succeeds, although no apply ever
// reaches that index, and its header says at least that index.
func testIndexOfANoOp(t *testing.T, c *servertest.Cluster, leader, follower *servertest.Node) {
	if _, err := leader.Cluster().TransferLeadership(ctx(t), &sqlraftv1.TransferLeadershipRequest{Id: follower.ID}); err != nil {
		t.Fatalf("transfer leadership to %s: %v", follower.ID, err)
	}
	newLeader := c.Leader()
	var resp *sqlraftv1.QueryResponse
	err := servertest.Retry(t, retryCtx(t), servertest.Idempotent, func(ctx context.Context) (err error) {
		resp, err = newLeader.DB().Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	i := resp.GetHeader().GetRaftIndex()
	t.Logf("commit index %d; the leader's FSM applied %d", i, newLeader.Raft.FSM().Applied())
	for _, n := range c.Nodes {
		if n == newLeader {
			continue
		}
		got, err := n.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Consistency: none, MinRaftIndex: i,
			Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM kv")}})
		if err != nil {
			t.Fatalf("NONE read on %s with min_raft_index %d (a commit index): %v", n.ID, i, err)
		}
		if got.GetHeader().GetRaftIndex() < i {
			t.Errorf("%s: header raft_index %d, want at least %d", n.ID, got.GetHeader().GetRaftIndex(), i)
		}
	}
}

// testLaggingFollowerWaits: the follower hears nothing from the leader
// while a write commits on the other two nodes; a NONE read there with the
// write's raft_index waits until its Raft link is back and it has applied
// the write, then sees it.
func testLaggingFollowerWaits(t *testing.T, c *servertest.Cluster, leader, follower *servertest.Node) {
	fi := nodeIndex(c, follower)
	c.PauseRaft(fi)
	resumed := false
	defer func() {
		if !resumed {
			c.ResumeRaft(fi)
		}
	}()
	w := exec(t, leader, st("INSERT INTO kv VALUES('a', 1)")).GetHeader().GetRaftIndex()
	if applied := follower.Raft.FSM().Applied(); applied >= w {
		t.Fatalf("the paused follower applied %d, at or past the write's %d", applied, w)
	}
	type answer struct {
		resp *sqlraftv1.QueryResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := follower.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Consistency: none, MinRaftIndex: w,
			Statements: []*sqlraftv1.Statement{st("SELECT v FROM kv WHERE k = 'a'")}})
		done <- answer{resp, err}
	}()
	c.Eventually(10*time.Second, waiters(follower, 1))
	if applied := follower.Raft.FSM().Applied(); applied >= w {
		t.Fatalf("the paused follower applied %d while the read waited for %d", applied, w)
	}
	c.ResumeRaft(fi)
	resumed = true
	a := <-done
	if a.err != nil {
		t.Fatalf("read with min_raft_index %d on %s: %v", w, follower.ID, a.err)
	}
	if got := a.resp.GetHeader().GetRaftIndex(); got < w {
		t.Errorf("header raft_index %d, want at least %d", got, w)
	}
	if rows := a.resp.GetResults()[0].GetRows(); len(rows) != 1 || rows[0].GetValues()[0].GetInteger() != 1 {
		t.Errorf("the read does not see the write: %v", a.resp.GetResults()[0])
	}
}

// testLaterIndex: reads (Request and QueryStream) ask for the index after
// the last write; they wait until the next write arrives and see it.
func testLaterIndex(t *testing.T, c *servertest.Cluster, leader, follower *servertest.Node) {
	w := exec(t, leader, st("INSERT INTO kv VALUES('b', 2)")).GetHeader().GetRaftIndex()
	reqDone := make(chan *sqlraftv1.RequestResponse, 1)
	reqErr := make(chan error, 1)
	go func() {
		resp, err := follower.DB().Request(ctx(t), &sqlraftv1.RequestRequest{Consistency: none, MinRaftIndex: w + 1,
			Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM kv WHERE k = 'c'")}})
		reqDone <- resp
		reqErr <- err
	}()
	stream, err := follower.DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{Consistency: none, MinRaftIndex: w + 1,
		Statement: st("SELECT k FROM kv ORDER BY k")})
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, waiters(follower, 2))
	exec(t, leader, st("INSERT INTO kv VALUES('c', 3)"))
	if err := <-reqErr; err != nil {
		t.Fatalf("Request with min_raft_index %d: %v", w+1, err)
	}
	resp := <-reqDone
	if n := resp.GetResults()[0].GetQuery().GetRows()[0].GetValues()[0].GetInteger(); n != 1 {
		t.Errorf("Request saw %d rows with k = 'c', want 1", n)
	}
	var keys []string
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("QueryStream with min_raft_index %d: %v", w+1, err)
		}
		if msg.GetHeader() != nil && msg.GetHeader().GetRaftIndex() <= w {
			t.Errorf("stream header raft_index %d, want past %d", msg.GetHeader().GetRaftIndex(), w)
		}
		for _, r := range msg.GetRows() {
			keys = append(keys, r.GetValues()[0].GetText())
		}
	}
	if len(keys) != 3 || keys[2] != "c" {
		t.Errorf("stream rows %v, want a, b, c", keys)
	}
}

// testIndexNotApplied: an index far ahead fails with FAILED_PRECONDITION
// and an ErrorInfo, before the caller's deadline, at NONE on a follower
// and at the other levels on the leader; without a deadline the node's
// --max-query-time ends the wait.
func testIndexNotApplied(t *testing.T, leader, follower *servertest.Node) {
	far := leader.Raft.FSM().Applied() + 1_000_000
	read := func(n *servertest.Node, level sqlraftv1.ReadConsistency, timeout time.Duration) error {
		c := context.Background()
		if timeout > 0 {
			var cancel context.CancelFunc
			c, cancel = context.WithTimeout(c, timeout)
			defer cancel()
		}
		_, err := n.DB().Query(c, &sqlraftv1.QueryRequest{Consistency: level, MinRaftIndex: far,
			Statements: []*sqlraftv1.Statement{st("SELECT 1")}})
		return err
	}
	cases := []struct {
		node    *servertest.Node
		level   sqlraftv1.ReadConsistency
		timeout time.Duration
	}{
		{follower, none, 2 * time.Second},
		{leader, sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK, 2 * time.Second},
		{leader, sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, 2 * time.Second},
		{leader, sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG, 2 * time.Second},
		{follower, none, 0}, // bounded by MaxQueryTime (3 s)
	}
	for _, tc := range cases {
		err := read(tc.node, tc.level, tc.timeout)
		wantCode(t, err, codes.FailedPrecondition)
		info := errorInfo(err)
		if info.GetReason() != "INDEX_NOT_APPLIED" || info.GetDomain() != "sqlraft.v1" {
			t.Fatalf("%s at %v: ErrorInfo %v, want reason INDEX_NOT_APPLIED", tc.node.ID, tc.level, info)
		}
		if got := info.GetMetadata()["min_raft_index"]; got != strconv.FormatUint(far, 10) {
			t.Errorf("metadata min_raft_index %q, want %d", got, far)
		}
		applied, perr := strconv.ParseUint(info.GetMetadata()["applied_index"], 10, 64)
		if perr != nil || applied == 0 || applied >= far {
			t.Errorf("metadata applied_index %q: want this node's applied index", info.GetMetadata()["applied_index"])
		}
	}
	if n := follower.Raft.IndexWaiters() + leader.Raft.IndexWaiters(); n != 0 {
		t.Errorf("%d reads still wait after they were answered", n)
	}
}

// testIndexWaitCancelled: a caller that cancels gets CANCELED, and the
// node stops waiting.
func testIndexWaitCancelled(t *testing.T, c *servertest.Cluster, follower *servertest.Node) {
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := follower.DB().Query(cctx, &sqlraftv1.QueryRequest{Consistency: none,
			MinRaftIndex: follower.Raft.FSM().Applied() + 1_000_000, Statements: []*sqlraftv1.Statement{st("SELECT 1")}})
		errc <- err
	}()
	c.Eventually(10*time.Second, waiters(follower, 1))
	cancel()
	wantCode(t, <-errc, codes.Canceled)
	c.Eventually(10*time.Second, waiters(follower, 0))
}

// waiters checks that n reads wait for their min_raft_index on node.
func waiters(node *servertest.Node, n int64) func() error {
	return func() error {
		if got := node.Raft.IndexWaiters(); got != n {
			return errorf("%s: %d reads wait for their index, want %d", node.ID, got, n)
		}
		return nil
	}
}

func nodeIndex(c *servertest.Cluster, n *servertest.Node) int {
	for i, m := range c.Nodes {
		if m == n {
			return i
		}
	}
	panic("node not in cluster")
}
