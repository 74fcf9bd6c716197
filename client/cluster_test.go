package client_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// targets records the node every unary call was sent to.
type targets struct {
	mu    sync.Mutex
	addrs []string
}

func (r *targets) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	r.mu.Lock()
	r.addrs = append(r.addrs, cc.Target())
	r.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// take returns the targets recorded since the last take.
func (r *targets) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.addrs
	r.addrs = nil
	return out
}

func stmt(t *testing.T, sql string, args ...any) *sqlraftv1.Statement {
	t.Helper()
	s, err := client.NewStatement(sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustExecute(t *testing.T, c *client.Client, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), servertest.LeaderTimeout)
	defer cancel()
	resp, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts})
	if err == nil {
		err = client.ExecuteError(resp, stmts)
	}
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return resp
}

// A client given only a follower's address, with forwarding off, follows
// the first NOT_LEADER to the leader and sends later writes straight there.
func TestLeaderDiscoveryFromNotLeader(t *testing.T) {
	cl := servertest.New(t, 3, servertest.Options{})
	leader, follower := cl.Leader(), cl.Followers()[0]
	rec := &targets{}
	c, err := client.New([]string{follower.GRPCAddr}, client.WithNoForward(),
		client.WithDialOptions(grpc.WithChainUnaryInterceptor(rec.interceptor)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExecute(t, c, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
	if got, want := rec.take(), []string{follower.GRPCAddr, leader.GRPCAddr}; !slices.Equal(got, want) {
		t.Fatalf("first write went to %v, want %v (the follower, then the leader it named)", got, want)
	}
	if c.Leader() != leader.GRPCAddr {
		t.Fatalf("client knows the leader as %q, want %q", c.Leader(), leader.GRPCAddr)
	}
	mustExecute(t, c, stmt(t, "INSERT INTO t(v) VALUES(?)", "a"))
	if got, want := rec.take(), []string{leader.GRPCAddr}; !slices.Equal(got, want) {
		t.Fatalf("second write went to %v, want %v", got, want)
	}
	// A NONE read stays on the node the client was given.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{stmt(t, "SELECT 1")},
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetHeader().GetNodeId(); got != follower.ID {
		t.Fatalf("NONE read answered by %s, want %s", got, follower.ID)
	}
}

// Stopping the leader: the client's next write fails to connect, goes to
// another node, waits out the election and succeeds.
func TestFailoverAfterLeaderStops(t *testing.T) {
	cl := servertest.New(t, 3, servertest.Options{})
	var addrs []string
	for _, n := range cl.Nodes {
		addrs = append(addrs, n.GRPCAddr)
	}
	c, err := client.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExecute(t, c, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY)"))
	old := cl.Leader()
	if c.Leader() != old.GRPCAddr {
		t.Fatalf("client knows the leader as %q, want %q (from the response header)", c.Leader(), old.GRPCAddr)
	}
	for i, n := range cl.Nodes {
		if n == old {
			cl.Stop(i)
		}
	}
	mustExecute(t, c, stmt(t, "INSERT INTO t(id) VALUES(?)", 1))
	if c.Leader() == old.GRPCAddr || c.Leader() == "" {
		t.Fatalf("client knows the leader as %q after the failover", c.Leader())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{stmt(t, "SELECT count(*) FROM t")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := client.GoValue(resp.GetResults()[0].GetRows()[0].GetValues()[0]); got != int64(1) {
		t.Fatalf("count(*) = %v, want 1", got)
	}
}

// The stream and cluster calls work through the client.
func TestStreamAndClusterCalls(t *testing.T) {
	cl := servertest.New(t, 3, servertest.Options{})
	c, err := client.New([]string{cl.Followers()[0].GRPCAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExecute(t, c, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY)"),
		stmt(t, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) INSERT INTO t SELECT i FROM n"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := c.QueryStream(ctx, &sqlraftv1.QueryStreamRequest{Statement: stmt(t, "SELECT id FROM t ORDER BY id"), BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		n++
		if got := rows.Values()[0]; got != n {
			t.Fatalf("row %d: %v", n, got)
		}
	}
	if rows.Err() != nil || n != 1000 || !slices.Equal(rows.Columns(), []string{"id"}) {
		t.Fatalf("streamed %d rows, columns %v, err %v", n, rows.Columns(), rows.Err())
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes.GetNodes()) != 3 {
		t.Fatalf("Nodes: %v, %v", nodes, err)
	}
	leader := cl.Leader()
	st, err := c.Status(ctx, client.At(leader.GRPCAddr))
	if err != nil || st.GetNodeId() != leader.ID || st.GetState() != "Leader" {
		t.Fatalf("Status at the leader: %v, %v", st, err)
	}
	if sum, err := c.Checksum(ctx); err != nil || sum.GetSha256() == "" {
		t.Fatalf("Checksum: %v, %v", sum, err)
	}
	var buf countingWriter
	hdr, written, err := c.Backup(ctx, &buf)
	if err != nil || written < 4096 || int64(buf) != written || hdr.GetRaftIndex() == 0 {
		t.Fatalf("Backup: header %v, %d bytes (%d written), %v", hdr, written, buf, err)
	}
}

type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
