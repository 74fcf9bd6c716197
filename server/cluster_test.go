package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func TestThreeNodeCluster(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader := c.Leader()
	followers := c.Followers()
	exec(t, leader, st("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
	acked := 0
	for i := 0; i < 10; i++ {
		exec(t, leader, st("INSERT INTO t(v) VALUES(?)", text(fmt.Sprint("leader", i))))
		exec(t, followers[i%2], st("INSERT INTO t(v) VALUES(?)", text(fmt.Sprint("follower", i))))
		acked += 2
	}
	// Reads at every level from every node. NONE may lag on followers, so
	// it is checked once the cluster has converged.
	c.WaitConverged(10 * time.Second)
	for _, n := range c.Nodes {
		for _, level := range levels {
			if got := count(t, n, "t", level); got != int64(acked) {
				t.Errorf("%s at %v: %d rows, want %d", n.ID, level, got, acked)
			}
		}
	}

	// Stop the leader: a new one is elected and every acknowledged write is
	// there; writes continue.
	old := indexOf(c, leader)
	c.Stop(old)
	newLeader := c.Leader()
	if newLeader == leader {
		t.Fatal("stopped node still leads")
	}
	if got := count(t, newLeader, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != int64(acked) {
		t.Fatalf("after failover: %d rows, want %d", got, acked)
	}
	for i := 0; i < 5; i++ {
		exec(t, c.Followers()[0], st("INSERT INTO t(v) VALUES('after')"))
		acked++
	}
	// The old leader restarts on its data directory and catches up.
	c.Restart(old)
	sum := c.WaitConverged(20 * time.Second)
	if got := count(t, c.Nodes[old], "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE); got != int64(acked) {
		t.Errorf("restarted node has %d rows, want %d", got, acked)
	}
	t.Logf("converged at checksum %s", sum)
}

func indexOf(c *servertest.Cluster, n *servertest.Node) int {
	for i, m := range c.Nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// TestConcurrentWritersLoseNothing has 16 clients write 20 rows each
// through all three nodes at once; every node ends up with every row.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	exec(t, c.Leader(), st("CREATE TABLE w(id INTEGER PRIMARY KEY, client INTEGER, seq INTEGER, UNIQUE(client, seq))"))
	const clients, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			n := c.Nodes[cl%3]
			for i := 0; i < each; i++ {
				if err := insertOnce(t, n, int64(cl), int64(i)); err != nil {
					errs <- fmt.Errorf("client %d, row %d via %s: %w", cl, i, n.ID, err)
					return
				}
			}
		}(cl)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second)
	entries, txs := c.Leader().Raft.FSM().Batching()
	t.Logf("leader applied %d entries in %d SQLite transactions", entries, txs)
	if txs >= entries {
		t.Errorf("%d entries took %d transactions: concurrent writes were not batched", entries, txs)
	}
	for _, n := range c.Nodes {
		if got := count(t, n, "w", sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE); got != clients*each {
			t.Errorf("%s: %d rows, want %d", n.ID, got, clients*each)
		}
	}
}

// insertOnce inserts row (client, seq) into w through n as a careful
// client would: it retries while no leader is known, and when leadership
// moved while the insert was in flight it first reads (LINEARIZABLE, so
// through a leader that has applied everything committed before) whether
// the row is there, and inserts again only if it is not. (An entry the new
// leader does not have by then can no longer commit.) The key is unique,
// so an insert applied twice would fail rather than count twice.
func insertOnce(t *testing.T, n *servertest.Node, client, seq int64) error {
	unknown := false
	return servertest.Retry(t, retryCtx(t), servertest.Idempotent, func(ctx context.Context) error {
		if unknown {
			resp, err := n.DB().Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
				st("SELECT count(*) FROM w WHERE client = ? AND seq = ?", integer(client), integer(seq))},
				Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
			if err != nil {
				return err
			}
			if resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger() == 1 {
				return nil // the earlier attempt was applied
			}
		}
		resp, err := n.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
			st("INSERT INTO w(client, seq) VALUES(?, ?)", integer(client), integer(seq))}})
		if servertest.Reason(err) == server.ReasonOutcomeUnknown {
			unknown = true
		}
		if e := resp.GetResults(); err == nil && e[0].GetError() != "" {
			return fmt.Errorf("%s", e[0].GetError())
		}
		return err
	})
}

func TestDeterministicFunctionsViaFollower(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	f := c.Followers()[0]
	exec(t, f, st(`CREATE TABLE d(id INTEGER PRIMARY KEY, r INTEGER, b BLOB, dt TEXT, ts TEXT, cd TEXT, ct TEXT,
		jd REAL, ue INTEGER, sf TEXT, dflt TEXT DEFAULT CURRENT_TIMESTAMP, dflt2 TEXT DEFAULT (datetime('now', 'subsec')))`))
	for i := 0; i < 5; i++ {
		exec(t, f, st(`INSERT INTO d(r, b, dt, ts, cd, ct, jd, ue, sf) VALUES(random(), randomblob(16), datetime('now'),
			CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, julianday('now'), unixepoch(), strftime('%Y-%m-%d %H:%M:%f', 'now'))`))
		time.Sleep(5 * time.Millisecond)
	}
	exec(t, f, st("UPDATE d SET r = r + abs(random() % 1000) WHERE id % 2 = 0"))
	c.WaitConverged(10 * time.Second)
	// The values are real: not NULL, and random() differs between rows.
	resp, err := f.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
		st("SELECT count(DISTINCT r), count(DISTINCT b), min(length(dt)), min(length(dflt2)) FROM d")}})
	if err != nil {
		t.Fatal(err)
	}
	v := resp.GetResults()[0].GetRows()[0].GetValues()
	if v[0].GetInteger() != 5 || v[1].GetInteger() != 5 || v[2].GetInteger() != 19 || v[3].GetInteger() != 23 {
		t.Errorf("unexpected values: %v", v)
	}
}

// TestNoForwardNamesTheLeader asks a follower not to forward: it refuses
// writes and non-NONE reads with NOT_LEADER naming the leader, and serves
// NONE reads itself.
func TestNoForwardNamesTheLeader(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	// The answers name the leader the follower knows; should leadership
	// move while the follower is asked (an election on a loaded machine),
	// it is asked again.
	var leader, f *servertest.Node
	var err, queryErr error
	mctx := metadata.AppendToOutgoingContext(retryCtx(t), server.MetadataNoForward, "true")
	c.Eventually(servertest.LeaderTimeout, func() error {
		leader, f = c.Leader(), c.Followers()[0]
		term := leader.Raft.Term()
		_, err = f.DB().Execute(mctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("CREATE TABLE x(a)")}})
		_, queryErr = f.DB().Query(mctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		if now := c.Leader(); now != leader || now.Raft.Term() != term {
			return errorf("leadership moved from %s (term %d) to %s (term %d) while asking %s (answers: %v; %v)",
				leader.ID, term, now.ID, now.Raft.Term(), f.ID, err, queryErr)
		}
		return nil
	})
	wantCode(t, err, codes.FailedPrecondition)
	info := errorInfo(err)
	if info == nil || info.GetReason() != server.ReasonNotLeader || info.GetMetadata()["leader_id"] != leader.ID ||
		info.GetMetadata()["leader_address"] != leader.GRPCAddr {
		t.Fatalf("error info %v, want NOT_LEADER naming %s at %s", info, leader.ID, leader.GRPCAddr)
	}
	wantCode(t, queryErr, codes.FailedPrecondition)
	// NONE reads are served locally even without forwarding.
	if _, err := f.DB().Query(mctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE}); err != nil {
		t.Fatal(err)
	}
}

func TestNoLeaderAndFreshness(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE t(a)"))
	c.WaitConverged(10 * time.Second)
	survivor := c.Followers()[0]
	for i, n := range c.Nodes {
		if n != survivor {
			c.Stop(i)
		}
	}
	// Within a bound the survivor's NONE read passes; later it is stale.
	c.Eventually(10*time.Second, func() error {
		_, err := survivor.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT * FROM t")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE, Freshness: dur(time.Second)})
		if info := errorInfo(err); info == nil || info.GetReason() != server.ReasonStale {
			return fmt.Errorf("got %v, want STALE_READ", err)
		}
		return nil
	})
	_, err := survivor.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT * FROM t")},
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE})
	if err != nil {
		t.Fatalf("NONE read without freshness: %v", err)
	}
	// The survivor gives up on the leader within twice the heartbeat
	// timeout; generous, for a loaded machine.
	c.Eventually(30*time.Second, func() error {
		_, err := survivor.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO t VALUES(1)")}})
		if info := errorInfo(err); info == nil || info.GetReason() != server.ReasonNoLeader {
			return fmt.Errorf("got %v, want NO_LEADER", err)
		}
		wantCode(t, err, codes.Unavailable)
		return nil
	})
}

// TestForwardedCallEndsWhenLeaderChanges runs a long read through a
// follower, moves leadership away from the node serving it, and expects the
// client to hear UNAVAILABLE promptly rather than at its deadline.
func TestForwardedCallEndsWhenLeaderChanges(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader, f := c.Leader(), c.Followers()[0]
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := f.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
			st("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1e10) SELECT count(*) FROM n")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := leader.Raft.TransferLeadership(ctx(t), f.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantCode(t, err, codes.Unavailable)
		if info := errorInfo(err); info == nil || info.GetReason() != server.ReasonOutcomeUnknown {
			t.Errorf("error info %v", info)
		}
		t.Logf("forwarded call ended %v after start", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("forwarded call still running 10 s after leadership moved")
	}
}
