package hostile

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// messageLimit is the clusters' --max-message-size: the smallest accepted,
// so that requests around it are quick to build, send and replicate. At the
// default (16 MiB) the same paths refuse and serve the same way.
const messageLimit = msglimit.Minimum

// streamSendTimeout is the clusters' --stream-send-timeout: shorter than
// the default (30 s), so that the tests see a stalled stream ended.
const streamSendTimeout = 5 * time.Second

// newCluster starts a 3-node cluster with the message limit and stream send
// timeout of these tests and otherwise the daemon's defaults (entry limits,
// query time, stream slots).
func newCluster(t *testing.T) *servertest.Cluster {
	t.Helper()
	return servertest.New(t, 3, servertest.Options{
		Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = messageLimit },
		Server:    func(_ int, opts *server.Options) { opts.StreamSendTimeout = streamSendTimeout },
	})
}

func st(sql string, params ...*sqlraftv1.Value) *sqlraftv1.Statement {
	return &sqlraftv1.Statement{Sql: sql, Params: params}
}

func text(s string) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}} }

func integer(i int64) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}}
}

func blob(b []byte) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: b}} }

// exec runs statements through node n, retrying only while no leader is
// known (nothing was proposed then), and fails the test on any error.
func exec(t *testing.T, n *servertest.Node, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	return servertest.Execute(t, n, servertest.NotIdempotent, stmts...)
}

// count returns the rows of table, read at LINEARIZABLE through n.
func count(t *testing.T, n *servertest.Node, table string) int64 {
	t.Helper()
	var resp *sqlraftv1.QueryResponse
	err := servertest.Retry(t, context.Background(), servertest.Idempotent, func(ctx context.Context) (err error) {
		resp, err = n.DB().Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM " + table)},
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		return err
	})
	if err != nil || resp.GetResults()[0].GetError() != "" {
		t.Fatalf("count %s via %s: %v %s", table, n.ID, err, resp.GetResults()[0].GetError())
	}
	return resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger()
}

// wantRefusal checks that err is RESOURCE_EXHAUSTED and that its message
// says what was too large and names the limit.
func wantRefusal(err error, limit int) error {
	s := status.Convert(err)
	if s.Code() != codes.ResourceExhausted {
		return fmt.Errorf("got %v, want RESOURCE_EXHAUSTED", err)
	}
	if !strings.Contains(s.Message(), "larger than max") || !strings.Contains(s.Message(), fmt.Sprint(limit)) {
		return fmt.Errorf("the refusal %q does not say that the message is larger than the limit of %d bytes", s.Message(), limit)
	}
	return nil
}

// footprint is what the process runs: goroutines, the server ends of gRPC
// connections (grpc-go's HTTP/2 server transport runs one keepalive
// goroutine each; the client API's and the Raft transport's alike), and
// sqlraft DatabaseService handlers in flight (with their send goroutines).
type footprint struct{ goroutines, conns, handlers int }

func (f footprint) String() string {
	return fmt.Sprintf("%d goroutines, %d server connections, %d handlers", f.goroutines, f.conns, f.handlers)
}

// current takes the process's footprint from its goroutines' stacks.
func current() footprint {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var f footprint
	for _, g := range strings.Split(string(buf), "\n\n") {
		f.goroutines++
		if strings.Contains(g, "transport.(*http2Server).keepalive") {
			f.conns++
		}
		if strings.Contains(g, "sqlraft/server.(*database)") || strings.Contains(g, "sqlraft/server.(*Server).send") {
			f.handlers++
		}
	}
	return f
}

// settled is the footprint once the goroutine count has stopped falling
// (connections and timers closing settle within a few hundred ms).
func settled() footprint {
	last := current()
	for i := 0; i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		f := current()
		if f.goroutines >= last.goroutines {
			return f
		}
		last = f
	}
	return last
}

// connSlack is how many more server connections than before a hostile
// client came may remain after it left: a follower keeps its forwarding
// connection to every leader it has forwarded to, so an election adds one
// per follower. A hostile client whose connections were not released leaves
// one per connection (1,000 in TestIdleConnections).
const connSlack = 6

// checkNothingLeft waits until, after a hostile client went away, no node
// runs a stream, no handler runs, and the server holds about as many
// connections as before the client came (before); then the cluster must
// converge and take a snapshot.
func checkNothingLeft(t *testing.T, c *servertest.Cluster, before footprint) {
	t.Helper()
	start := time.Now()
	var now footprint
	c.Eventually(30*time.Second, func() error {
		for _, n := range c.Nodes {
			if s := n.Raft.Status().Streams; s != 0 {
				return fmt.Errorf("%s still runs %d streams", n.ID, s)
			}
		}
		now = current()
		if now.handlers != 0 || now.conns > before.conns+connSlack {
			return fmt.Errorf("%v, before the hostile client %v", now, before)
		}
		return nil
	})
	t.Logf("%v after the hostile client went away: no stream, %v (before it came: %v)",
		time.Since(start).Round(time.Millisecond), now, before)
	c.WaitConverged(60 * time.Second)
	leader := c.Leader()
	snap, err := leader.Cluster().Snapshot(context.Background(), &sqlraftv1.SnapshotRequest{})
	if err != nil {
		t.Fatalf("snapshot on %s after the hostile client: %v", leader.ID, err)
	}
	t.Logf("converged; %s took snapshot %s (%s, %d bytes)", leader.ID, snap.GetId(), snap.GetKind(), snap.GetSizeBytes())
}
