package embed_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/embed"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// config is a node on dir with fresh loopback listeners.
func config(t *testing.T, dir, id string) embed.Config {
	logger := servertest.Logger().With("test-node", id)
	return embed.Config{
		Node:          raftnode.Config{DataDir: dir, RaftListener: listen(t), Logger: logger},
		DefaultID:     id,
		GRPCListener:  listen(t),
		RetryInterval: 100 * time.Millisecond,
		Logger:        logger,
	}
}

func start(t *testing.T, cfg embed.Config) *embed.Node {
	t.Helper()
	n, err := embed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func client(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(servertest.LeaderTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nodeTable returns the cluster's members as addr's node lists them.
func nodeTable(cc *grpc.ClientConn) (map[string]*sqlraftv1.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := sqlraftv1.NewClusterServiceClient(cc).Nodes(ctx, &sqlraftv1.NodesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]*sqlraftv1.Node{}
	for _, n := range resp.GetNodes() {
		out[n.GetId()] = n
	}
	return out, nil
}

// TestMembershipLifecycle runs the membership owner end to end on real
// nodes: a plain first start bootstraps a one-node cluster; a node started
// with Join is added and its client address recorded; restarted on a new
// client address with no Join, it publishes the new address itself; and a
// request sent to it is forwarded to the leader. A start that names another
// node's data directory is refused, naming both IDs.
func TestMembershipLifecycle(t *testing.T) {
	base := t.TempDir()
	a := start(t, config(t, filepath.Join(base, "a"), "a"))
	ca := client(t, a.GRPCAddr())
	eventually(t, "a leads its own cluster", func() error {
		if !a.Raft().IsLeader() || !a.Raft().Ready() {
			return fmt.Errorf("a is not a ready leader")
		}
		return nil
	})

	bcfg := config(t, filepath.Join(base, "b"), "b")
	bcfg.Join = []string{a.GRPCAddr()}
	b := start(t, bcfg)
	eventually(t, "b joined with its address", func() error {
		nodes, err := nodeTable(ca)
		if err != nil {
			return err
		}
		if n := nodes["b"]; n == nil || !n.GetVoter() || n.GetGrpcAddress() != b.GRPCAddr() {
			return fmt.Errorf("b is %v", n)
		}
		return nil
	})
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}

	// Restart b on a new client address and without Join: it has state,
	// so it neither bootstraps nor joins, and publishes its new address.
	bcfg2 := config(t, filepath.Join(base, "b"), "b")
	b2 := start(t, bcfg2)
	if b2.GRPCAddr() == b.GRPCAddr() {
		t.Fatal("the new listener reused the old port")
	}
	eventually(t, "b's new address published", func() error {
		nodes, err := nodeTable(ca)
		if err != nil {
			return err
		}
		if got := nodes["b"].GetGrpcAddress(); got != b2.GRPCAddr() {
			return fmt.Errorf("b at %q, want %q", got, b2.GRPCAddr())
		}
		return nil
	})
	cb := client(t, b2.GRPCAddr())
	eventually(t, "a write through b", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := sqlraftv1.NewDatabaseServiceClient(cb).Execute(ctx, &sqlraftv1.ExecuteRequest{
			Statements: []*sqlraftv1.Statement{{Sql: "CREATE TABLE IF NOT EXISTS t(x)"}}})
		return err
	})

	wrong := config(t, filepath.Join(base, "a"), "a")
	wrong.Node.ID = "z"
	if _, err := embed.Start(wrong); err == nil || !strings.Contains(err.Error(), `"z"`) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("start on a's directory as z: %v", err)
	}
}

// TestGracefulStopHandsOver: stopping the leader the way SIGTERM does
// hands leadership to another voter before the node goes, so the cluster
// has a new leader at once — far sooner than the heartbeat timeout (set
// long here) after which followers of a vanished leader would start an
// election — and takes writes from it.
func TestGracefulStopHandsOver(t *testing.T) {
	const heartbeat = 8 * time.Second
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = heartbeat, heartbeat, 2*time.Second
	}})
	old := c.Leader()
	var idx int
	for i, n := range c.Nodes {
		if n == old {
			idx = i
		}
	}
	c.Shutdown(idx)
	stopped := time.Now()
	var leader *servertest.Node
	for leader == nil {
		for _, n := range c.Nodes {
			if n != old && n.Running() && n.Raft.IsLeader() {
				leader = n
			}
		}
		if leader == nil && time.Since(stopped) > heartbeat/2 {
			t.Fatalf("no other node led %v after the graceful stop: leadership was not handed over "+
				"(without a hand-over the others wait at least %v)", heartbeat/2, heartbeat)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s leads %v after %s stopped", leader.ID, time.Since(stopped).Round(time.Millisecond), old.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := servertest.Retry(t, ctx, servertest.NotIdempotent, func(ctx context.Context) error {
		_, err := c.Leader().DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{Sql: "CREATE TABLE t(x)"}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
