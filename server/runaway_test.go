package server_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// endless is a CTE that never ends on its own.
const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "

// recoverWithin is how soon after a runaway request fails every node must
// serve a write and a read again. (The issue asks for a second; the test
// allows two because it runs under the race detector on a loaded machine,
// and logs what it measured.)
const recoverWithin = 2 * time.Second

// runawayCluster is a 3-node cluster with small budgets, so runaway
// statements are stopped quickly.
func runawayCluster(t *testing.T) *servertest.Cluster {
	c := servertest.New(t, 3, servertest.Options{
		Configure: func(_ int, cfg *raftnode.Config) {
			cfg.EntryLimits = &sqlitedb.Limits{Steps: 20_000_000, Rows: 100_000, Bytes: 8 << 20}
			cfg.MaxQueryTime = time.Second
		},
	})
	exec(t, c.Leader(), st("CREATE TABLE t(x)"), st("CREATE TABLE ok(x)"))
	return c
}

func queryReq(level sqlraftv1.ReadConsistency, sql string) *sqlraftv1.QueryRequest {
	return &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st(sql)}, Consistency: level}
}

// TestRunawayWritesAndStrongReads sends each runaway shape that goes
// through the log: the step, row or byte budget stops it with the same
// per-statement error on every replica, every node serves writes and reads
// right after, and nodes that replay the log (a restart, and a node that
// lost its database) pass it and converge.
func TestRunawayWritesAndStrongReads(t *testing.T) {
	c := runawayCluster(t)
	f := c.Followers()[0]
	shapes := []struct {
		name string
		run  func() (string, error) // returns the runaway statement's error
	}{
		{"endless INSERT", func() (string, error) {
			resp, err := f.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
				st(endless + "INSERT INTO t SELECT x FROM c")}})
			return resp.GetResults()[0].GetError(), err
		}},
		{"INSERT of too many rows", func() (string, error) {
			resp, err := f.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
				st(endless + "INSERT INTO t SELECT x FROM c LIMIT 1000000")}})
			return resp.GetResults()[0].GetError(), err
		}},
		{"INSERT of too many bytes", func() (string, error) {
			resp, err := f.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
				st(endless + "INSERT INTO t SELECT zeroblob(1000000) FROM c")}})
			return resp.GetResults()[0].GetError(), err
		}},
		{"endless STRONG read", func() (string, error) {
			resp, err := f.DB().Query(ctx(t), queryReq(sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG, endless+"SELECT max(x) FROM c"))
			return resp.GetResults()[0].GetError(), err
		}},
		{"endless SELECT in a Request transaction", func() (string, error) {
			resp, err := f.DB().Request(ctx(t), &sqlraftv1.RequestRequest{Transaction: true, Statements: []*sqlraftv1.Statement{
				st("INSERT INTO t VALUES('rolled back')"), st(endless + "SELECT max(x) FROM c")}})
			if err != nil {
				return "", err
			}
			return resp.GetResults()[1].GetQuery().GetError() + resp.GetResults()[1].GetExecute().GetError(), err
		}},
	}
	wantLimit := map[string]string{"INSERT of too many rows": "--max-write-rows", "INSERT of too many bytes": "--max-write-bytes",
		"endless INSERT": "budget of one write"}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			msg, err := sh.run()
			if err != nil {
				t.Fatalf("the request failed as a whole: %v", err)
			}
			want := wantLimit[sh.name]
			if want == "" {
				want = "--max-write-steps"
			}
			if !strings.Contains(msg, want) {
				t.Fatalf("statement error %q does not name %s", msg, want)
			}
			servesWithin(t, c, recoverWithin)
		})
	}
	if n := count(t, f, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); n != 0 {
		t.Fatalf("%d rows of runaway writes were kept", n)
	}
	sum := c.WaitConverged(30 * time.Second)

	// Replay: one follower restarts on its data; the other lost its database
	// and applies the whole log again, runaway entries included.
	followers := c.Followers()
	c.Stop(indexOf(c, followers[0]))
	c.Restart(indexOf(c, followers[0]))
	lost := indexOf(c, followers[1])
	c.Stop(lost)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(c.Nodes[lost].Dir, "db.sqlite"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	c.Restart(lost)
	c.WaitConverged(30 * time.Second) // the restarted nodes have replayed past every runaway entry
	servesWithin(t, c, recoverWithin)
	exec(t, c.Leader(), st("DELETE FROM ok"))
	if got := c.WaitConverged(30 * time.Second); got == sum {
		t.Fatal("checksum unchanged after a delete")
	}
}

// TestRunawayReadsOutsideTheLog sends endless reads that run on one node
// outside the log (NONE locally, LINEARIZABLE forwarded to the leader, and a
// QueryStream): the query time limit interrupts them with DEADLINE_EXCEEDED
// naming the limit, and every node serves writes and reads right after.
func TestRunawayReadsOutsideTheLog(t *testing.T) {
	c := runawayCluster(t)
	f := c.Followers()[0]
	for _, level := range []sqlraftv1.ReadConsistency{sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE,
		sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK, sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE} {
		t.Run(level.String(), func(t *testing.T) {
			_, err := f.DB().Query(ctx(t), queryReq(level, endless+"SELECT max(x) FROM c"))
			wantCode(t, err, codes.DeadlineExceeded)
			if !strings.Contains(err.Error(), "--max-query-time") {
				t.Fatalf("error does not name the limit: %v", err)
			}
			servesWithin(t, c, recoverWithin)
		})
	}
	t.Run("QueryStream", func(t *testing.T) {
		stream, err := f.DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{Statement: st(endless + "SELECT max(x) FROM c"),
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.DeadlineExceeded)
		servesWithin(t, c, recoverWithin)
	})
	t.Run("QueryStream of a slow client is not cut off", func(t *testing.T) {
		exec(t, c.Leader(), st(endless+"INSERT INTO ok SELECT x FROM c LIMIT 3000"))
		stream, err := f.DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{Statement: st("SELECT x FROM ok"), BatchSize: 1000,
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("after %d rows: %v", rows, err)
			}
			rows += len(msg.GetRows())
			time.Sleep(700 * time.Millisecond) // slower than nothing, but the SQL itself is quick
		}
		if rows < 3000 {
			t.Fatalf("%d rows", rows)
		}
	})
}

// TestHealthFollowsApplyLag runs a write that is slow to apply but within
// its budget: while every node applies it, "" turns NOT_SERVING on every
// node once it has trailed its commit index for longer than the bound, and
// SERVING again once it has caught up.
func TestHealthFollowsApplyLag(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) {
		cfg.EntryLimits = &sqlitedb.Limits{} // no budget: the slow write must finish
		cfg.ApplyStallTimeout = 300 * time.Millisecond
	}})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE ok(x)"))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		// About 100 M SQLite steps: over a second on a small machine.
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := leader.DB().Execute(wctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
			st("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 8000000) SELECT count(*) FROM c")}})
		done <- err
	}()
	notServing := map[string]bool{}
	check := func(n *servertest.Node) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(n.Conn()).Check(ctx(t), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health of %s: %v", n.ID, err)
		}
		return resp.GetStatus()
	}
	var writeErr error
	finished := false
	for !finished {
		select {
		case writeErr = <-done:
			finished = true
		case <-time.After(50 * time.Millisecond):
		}
		for _, n := range c.Nodes {
			if check(n) == healthpb.HealthCheckResponse_NOT_SERVING {
				notServing[n.ID] = true
			}
		}
	}
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	t.Logf("the slow write took %v", time.Since(start).Round(time.Millisecond))
	if len(notServing) == 0 {
		t.Fatal("no node reported NOT_SERVING while its FSM was busy for seconds")
	}
	c.Eventually(20*time.Second, func() error {
		for _, n := range c.Nodes {
			if s := check(n); s != healthpb.HealthCheckResponse_SERVING {
				return errorf("%s is %v after catching up", n.ID, s)
			}
		}
		return nil
	})
	t.Logf("NOT_SERVING seen on %v", notServing)
}
