package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// bigWrite builds an Execute request whose encoded size is exactly size.
func bigWrite(t *testing.T, size int) (*sqlraftv1.ExecuteRequest, int) {
	t.Helper()
	req := func(n int) *sqlraftv1.ExecuteRequest {
		return &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO big(v) VALUES(?)",
			&sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: bytes.Repeat([]byte{7}, n)}})}}
	}
	n := size - proto.Size(req(0))
	for proto.Size(req(n)) > size {
		n--
	}
	for proto.Size(req(n+1)) <= size {
		n++
	}
	r := req(n)
	if proto.Size(r) != size {
		t.Fatalf("could not build a request of exactly %d bytes (got %d)", size, proto.Size(r))
	}
	return r, n
}

// TestMessageLimitEndToEnd writes a value just under and just over the
// message limit on a 3-node cluster, through the leader and through a
// follower: the one under is replicated and readable on every node, the one
// over is refused with RESOURCE_EXHAUSTED naming the limit, and the cluster
// keeps committing. The limit is above grpc-go's 4 MiB default, which the
// Raft transport used to keep.
func TestMessageLimitEndToEnd(t *testing.T) {
	const limit = 6 << 20
	// The harness's Raft timeouts (the daemon's defaults) are relaxed enough
	// for three in-process nodes passing 6 MiB entries under the race
	// detector on a loaded 2-core machine: a stalled heartbeat would make the
	// leader step down and the write's outcome be unknown, which is correct
	// but not what this tests.
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) {
		cfg.MaxMessageBytes = limit
	}})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)"))
	under, n := bigWrite(t, limit)
	over, _ := bigWrite(t, limit+1)
	for _, via := range []*servertest.Node{leader, c.Followers()[0]} {
		resp, err := executeRetryingNoLeader(t, via, under)
		if err != nil || resp.GetResults()[0].GetError() != "" {
			t.Fatalf("a request of exactly the limit via %s: %v %v", via.ID, err, resp.GetResults())
		}
		_, err = via.DB().Execute(ctx(t), over)
		wantCode(t, err, codes.ResourceExhausted)
		if !strings.Contains(err.Error(), fmt.Sprint(limit)) {
			t.Errorf("the refusal does not name the limit: %v", err)
		}
	}
	exec(t, c.Followers()[1], st("INSERT INTO big(v) VALUES(x'01')"))
	c.WaitConverged(30 * time.Second)
	// Every node reads the largest value back, in a response larger than the
	// request that wrote it (a client raises its receive limit for that).
	for _, node := range c.Nodes {
		for id := 1; id <= 2; id++ {
			resp, err := node.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
				st("SELECT v FROM big WHERE id = ?", integer(int64(id)))},
				Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE}, grpc.MaxCallRecvMsgSize(2*limit))
			if err != nil {
				t.Fatalf("read back on %s: %v", node.ID, err)
			}
			if rows := resp.GetResults()[0].GetRows(); len(rows) != 1 || len(rows[0].GetValues()[0].GetBlob()) != n {
				t.Fatalf("%s: row %d: %v", node.ID, id, resp.GetResults()[0].GetError())
			}
		}
		// Both at once exceed what one response may carry.
		_, err := node.DB().Query(ctx(t), &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT v FROM big")},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE}, grpc.MaxCallRecvMsgSize(2*limit))
		wantCode(t, err, codes.ResourceExhausted)
	}
}

// TestEntryTooLargeIsRefusedBeforeTheLog checks the leader's own check: an
// entry over the limit is refused before it is proposed (a request can only
// produce one if it reaches raftnode some other way than the client API,
// whose server refuses it first), and the cluster keeps committing.
func TestEntryTooLargeIsRefusedBeforeTheLog(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = msglimit.Minimum }})
	n := c.Leader()
	exec(t, n, st("CREATE TABLE big(v)"))
	before := n.Raft.Status().LastLogIndex
	_, err := n.Raft.Write(ctx(t), &sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO big VALUES(?)",
		&sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: make([]byte, msglimit.Minimum+8<<10)}})}})
	var tooLarge *msglimit.TooLargeError
	if !errorsAs(err, &tooLarge) {
		t.Fatalf("got %v, want a TooLargeError", err)
	}
	if after := n.Raft.Status().LastLogIndex; after != before {
		t.Fatalf("the log grew from %d to %d", before, after)
	}
	exec(t, n, st("INSERT INTO big VALUES(1)"))
}

// executeRetryingNoLeader sends req through n, retrying (as a client would)
// while the cluster reports that no leader is known: nothing was proposed
// then, so retrying cannot apply the request twice.
func executeRetryingNoLeader(t *testing.T, n *servertest.Node, req *sqlraftv1.ExecuteRequest) (*sqlraftv1.ExecuteResponse, error) {
	t.Helper()
	var resp *sqlraftv1.ExecuteResponse
	err := servertest.Retry(t, retryCtx(t), servertest.NotIdempotent, func(ctx context.Context) (err error) {
		resp, err = n.DB().Execute(ctx, req)
		return err
	})
	return resp, err
}

// servesWithin checks that every running node answers a write (forwarded
// from followers) and a local read within d.
func servesWithin(t *testing.T, c *servertest.Cluster, d time.Duration) {
	t.Helper()
	start := time.Now()
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := n.DB().Execute(cctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO ok VALUES(1)")}})
		if err == nil {
			_, err = n.DB().Query(cctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM ok")},
				Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE})
		}
		cancel()
		if err != nil {
			t.Fatalf("%s does not serve a write and a read within %v: %v", n.ID, d, err)
		}
	}
	t.Logf("every node served a write and a read %v after", time.Since(start).Round(time.Millisecond))
}
