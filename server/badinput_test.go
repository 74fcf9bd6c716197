package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestBadInput sends each kind of bad request through a follower (so that
// forwarding is exercised too) and checks the status code, then that the
// data written before is intact and nothing of the bad requests landed.
func TestBadInput(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = 1 << 20 }})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)"), st("INSERT INTO t(v) VALUES('keep')"))
	sumBefore := c.WaitConverged(10 * time.Second)
	f := c.Followers()[0]
	execReq := func(stmts ...*sqlraftv1.Statement) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := f.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts, Transaction: true})
			return err
		}
	}
	queryReq := func(q *sqlraftv1.QueryRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := f.DB().Query(ctx, q); return err }
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	cases := []struct {
		name string
		ctx  context.Context
		call func(context.Context) error
		code codes.Code
		msg  string
	}{
		{"empty statements", nil, execReq(), codes.InvalidArgument, "no statements"},
		{"invalid SQL", nil, execReq(st("INSERT INTO t(v) VALUES('x')"), st("INSRT INTO t VALUES(1)")), codes.InvalidArgument, "syntax error"},
		{"too few params", nil, execReq(st("INSERT INTO t(v) VALUES(?)")), codes.InvalidArgument, "1 positional parameter(s), 0 given"},
		{"too many params", nil, execReq(st("INSERT INTO t(v) VALUES(?)", text("a"), text("b"))), codes.InvalidArgument, "2 given"},
		{"unknown named param", nil, execReq(&sqlraftv1.Statement{Sql: "INSERT INTO t(v) VALUES(:v)",
			NamedParams: map[string]*sqlraftv1.Value{"v": text("a"), "w": text("b")}}), codes.InvalidArgument, "unknown named parameter(s) w"},
		{"value without kind", nil, execReq(st("INSERT INTO t(v) VALUES(?)", &sqlraftv1.Value{})), codes.InvalidArgument, "no kind"},
		{"two statements in one", nil, execReq(st("INSERT INTO t(v) VALUES('a'); DROP TABLE t")), codes.InvalidArgument, "2 SQL statements"},
		{"explicit BEGIN", nil, execReq(st("BEGIN")), codes.InvalidArgument, "transaction field"},
		{"internal table", nil, execReq(st("DELETE FROM _sqlraft_nodes")), codes.InvalidArgument, "internal to sqlraft"},
		{"journal mode", nil, execReq(st("PRAGMA journal_mode=DELETE")), codes.InvalidArgument, "journal_mode"},
		{"write sent to Query", nil, queryReq(&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("DELETE FROM t")}}),
			codes.InvalidArgument, "not read-only"},
		{"write sent to STRONG Query", nil, queryReq(&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("DELETE FROM t")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}), codes.InvalidArgument, "not read-only"},
		{"unknown consistency", nil, queryReq(&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
			Consistency: 42}), codes.InvalidArgument, "unknown consistency"},
		{"negative freshness", nil, queryReq(&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
			Freshness: dur(-time.Second)}), codes.InvalidArgument, "freshness"},
		{"oversized request", nil, execReq(st("INSERT INTO t(v) VALUES(?)", text(strings.Repeat("x", 2<<20)))), codes.ResourceExhausted, ""},
		{"cancelled", cancelled, execReq(st("INSERT INTO t(v) VALUES('c')")), codes.Canceled, ""},
		{"expired deadline", expired, execReq(st("INSERT INTO t(v) VALUES('d')")), codes.DeadlineExceeded, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cctx := tc.ctx
			if cctx == nil {
				cctx = retryCtx(t)
			}
			// A follower forwards the request to the leader, which validates
			// it: while no leader is known the answer is NO_LEADER, and a
			// client asks again.
			err := servertest.Retry(t, cctx, servertest.NotIdempotent, tc.call)
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err, tc.msg)
			}
		})
	}
	if sum := c.WaitConverged(10 * time.Second); sum != sumBefore {
		t.Errorf("content changed by rejected requests")
	}
	if got := count(t, f, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 1 {
		t.Errorf("%d rows, want 1", got)
	}
}

// TestSQLErrorsAndTransactions checks per-statement errors: without a
// transaction each statement stands alone; with one, the first error rolls
// the whole request back and later statements say they did not run.
func TestSQLErrorsAndTransactions(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE t(v TEXT UNIQUE)"), st("INSERT INTO t VALUES('a')"))
	resp, err := n.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		st("INSERT INTO t VALUES('b')"), st("INSERT INTO t VALUES('a')"), st("INSERT INTO nosuch VALUES(1)"), st("INSERT INTO t VALUES('c')")}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetResults()
	if r[0].GetError() != "" || !strings.Contains(r[1].GetError(), "UNIQUE") || !strings.Contains(r[2].GetError(), "no such table") || r[3].GetError() != "" {
		t.Fatalf("results %v", r)
	}
	resp, err = n.DB().Execute(ctx(t), &sqlraftv1.ExecuteRequest{Transaction: true, Statements: []*sqlraftv1.Statement{
		st("INSERT INTO t VALUES('d')"), st("INSERT INTO t VALUES('a')"), st("INSERT INTO t VALUES('e')")}})
	if err != nil {
		t.Fatal(err)
	}
	r = resp.GetResults()
	if !strings.Contains(r[1].GetError(), "UNIQUE") || !strings.Contains(r[2].GetError(), "not executed") {
		t.Fatalf("results %v", r)
	}
	if got := count(t, n, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG); got != 3 {
		t.Errorf("%d rows, want 3 (a, b, c): the failed transaction must leave nothing", got)
	}
}

// TestRequestAndQueryStream covers the mixed Request RPC and streaming.
func TestRequestAndQueryStream(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	f := c.Followers()[0]
	var resp *sqlraftv1.RequestResponse
	err := servertest.Retry(t, retryCtx(t), servertest.NotIdempotent, func(ctx context.Context) (err error) {
		resp, err = f.DB().Request(ctx, &sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{
			st("CREATE TABLE s(i INTEGER)"),
			st("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1234) INSERT INTO s SELECT i FROM n"),
			st("SELECT count(*) FROM s")}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetResults()[2].GetQuery().GetRows()[0].GetValues()[0].GetInteger(); got != 1234 {
		t.Fatalf("count in request = %d", got)
	}
	if resp.GetResults()[1].GetExecute().GetRowsAffected() != 1234 {
		t.Fatalf("insert result %v", resp.GetResults()[1])
	}
	// All reads: served as a query.
	err = servertest.Retry(t, retryCtx(t), servertest.Idempotent, func(ctx context.Context) (err error) {
		resp, err = f.DB().Request(ctx, &sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{st("SELECT max(i) FROM s")}})
		return err
	})
	if err != nil || resp.GetResults()[0].GetQuery().GetRows()[0].GetValues()[0].GetInteger() != 1234 {
		t.Fatalf("read-only request: %v %v", resp, err)
	}
	c.WaitConverged(10 * time.Second) // so NONE reads on the follower see every row too
	for _, level := range levels {
		var total, msgs int
		err := servertest.Retry(t, retryCtx(t), servertest.Idempotent, func(ctx context.Context) (err error) {
			total, msgs, err = streamCount(ctx, t, f, level)
			return err
		})
		if err != nil {
			t.Fatalf("%v: after %d rows in %d messages: %v", level, total, msgs, err)
		}
		if total != 1234 || msgs != 13 {
			t.Errorf("%v: %d rows in %d messages, want 1234 in 13", level, total, msgs)
		}
	}
}

// streamCount reads table s with QueryStream through n at level, 100 rows
// a message, checks that the rows count up from 1 and that the first
// message carries the header and columns, and returns how many rows and
// messages came before the stream ended (io.EOF) or failed (the error).
func streamCount(ctx context.Context, t *testing.T, n *servertest.Node, level sqlraftv1.ReadConsistency) (total, msgs int, err error) {
	t.Helper()
	stream, err := n.DB().QueryStream(ctx, &sqlraftv1.QueryStreamRequest{Statement: st("SELECT i FROM s ORDER BY i"),
		Consistency: level, BatchSize: 100}, grpc.MaxCallRecvMsgSize(1<<20))
	if err != nil {
		return 0, 0, err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return total, msgs, nil
		}
		if err != nil {
			return total, msgs, err
		}
		if msgs == 0 && (msg.GetHeader() == nil || len(msg.GetColumns()) != 1) {
			t.Fatalf("first message lacks header or columns: %v", msg)
		}
		for _, row := range msg.GetRows() {
			total++
			if row.GetValues()[0].GetInteger() != int64(total) {
				t.Fatalf("row %d = %v", total, row)
			}
		}
		msgs++
	}
}

// TestSingleNodeRestartKeepsData restarts a node on its data directory.
func TestSingleNodeRestartKeepsData(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE t(v)"))
	for i := 0; i < 20; i++ {
		exec(t, n, st("INSERT INTO t VALUES(?)", integer(int64(i))))
	}
	before := c.WaitConverged(5 * time.Second)
	c.Stop(0)
	c.Restart(0)
	n = c.Leader()
	if got := count(t, n, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 20 {
		t.Fatalf("%d rows after restart, want 20", got)
	}
	if after := c.WaitConverged(5 * time.Second); after != before {
		t.Errorf("checksum changed across restart")
	}
	exec(t, n, st("INSERT INTO t VALUES(20)"))
	if got := count(t, n, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 21 {
		t.Fatalf("%d rows, want 21: replayed entries must not apply twice", got)
	}
	// A snapshot that ends on the new leader's barrier (no write since the
	// election) must not make the next start restore it.
	c.Stop(0)
	c.Restart(0)
	if _, err := c.Leader().Cluster().Snapshot(ctx(t), &sqlraftv1.SnapshotRequest{}); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	c.Restart(0)
	if got := c.Leader().Raft.FSM().Restores(); got != 0 {
		t.Errorf("restart restored the snapshot %d time(s); the database already held it", got)
	}
	if got := count(t, c.Leader(), "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 21 {
		t.Fatalf("%d rows after restarts, want 21", got)
	}
}

// TestStalledStreamsDoNotStarveReads opens more streams than the reader pool
// has connections and never reads them; validation and reads go on.
func TestStalledStreamsDoNotStarveReads(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE s(i)"), st("INSERT INTO s WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100000) SELECT i FROM n"))
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 6; i++ {
		stream, err := n.DB().QueryStream(sctx, &sqlraftv1.QueryStreamRequest{Statement: st("SELECT i, randomblob(100) FROM s"), BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil { // the stream is running; now stop reading it
			t.Fatal(err)
		}
	}
	exec(t, n, st("INSERT INTO s VALUES(-1)"))
	if got := count(t, n, "s", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 100001 {
		t.Fatalf("%d rows", got)
	}
}
