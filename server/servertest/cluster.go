// Package servertest runs real sqlraft clusters inside a test process: each
// node has its own data directory, a Raft gRPC server and a client gRPC
// server on 127.0.0.1 ports, and tests talk to it with the generated
// clients, exactly as a user would.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
)

// Options tune a test cluster.
type Options struct {
	// Configure, when set, adjusts each node's raftnode.Config before start.
	Configure func(i int, cfg *raftnode.Config)
	// Server adjusts each node's server options.
	Server func(i int, opts *server.Options)
}

// Cluster is a set of in-process nodes.
type Cluster struct {
	T     testing.TB
	Nodes []*Node
	opts  Options
}

// Node is one member: its addresses, its live parts while running, and
// client stubs connected to its client address.
type Node struct {
	ID       string
	Dir      string
	RaftAddr string
	GRPCAddr string

	mu      sync.Mutex
	raftLis *severableListener
	Raft    *raftnode.Node
	Server  *server.Server
	gs      *grpc.Server
	conn    *grpc.ClientConn
	running bool
}

// DB returns a DatabaseService client for the node.
func (n *Node) DB() sqlraftv1.DatabaseServiceClient {
	return sqlraftv1.NewDatabaseServiceClient(n.conn)
}

// Conn is the node's client connection, for other services (health).
func (n *Node) Conn() *grpc.ClientConn { return n.conn }

// Cluster returns a ClusterService client for the node.
func (n *Node) Cluster() sqlraftv1.ClusterServiceClient {
	return sqlraftv1.NewClusterServiceClient(n.conn)
}

// Running reports whether the node is started.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// New starts size nodes bootstrapped as one cluster of voters and waits for
// a leader.
func New(t testing.TB, size int, opts Options) *Cluster {
	c := &Cluster{T: t, opts: opts}
	base := t.TempDir()
	var servers []raft.Server
	for i := 0; i < size; i++ {
		n := &Node{ID: fmt.Sprintf("node%d", i), Dir: filepath.Join(base, fmt.Sprintf("node%d", i))}
		n.RaftAddr, n.GRPCAddr = freeAddr(t), freeAddr(t)
		c.Nodes = append(c.Nodes, n)
		servers = append(servers, raft.Server{ID: raft.ServerID(n.ID), Address: raft.ServerAddress(n.RaftAddr)})
	}
	for i := range c.Nodes {
		c.start(i, servers)
	}
	t.Cleanup(c.Close)
	c.Leader()
	return c
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Logger is the logger test nodes use: warnings and errors only, unless
// SQLRAFT_TEST_LOG=debug.
func Logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SQLRAFT_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (c *Cluster) start(i int, bootstrap []raft.Server) {
	t, n := c.T, c.Nodes[i]
	cfg := raftnode.Config{
		ID: n.ID, DataDir: n.Dir, RaftAddr: n.RaftAddr, GRPCAdvertise: n.GRPCAddr,
		Bootstrap: bootstrap != nil && i == 0, BootstrapServers: bootstrap,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, Logger: Logger().With("test-node", n.ID),
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	var rn *raftnode.Node
	raftLis, err := listen(n.RaftAddr)
	if err == nil {
		cfg.RaftListener = raftLis
		rn, err = raftnode.New(cfg)
	}
	if err != nil {
		t.Fatalf("start %s: %v", n.ID, err)
	}
	sopts := server.Options{Logger: cfg.Logger}
	if c.opts.Server != nil {
		c.opts.Server(i, &sopts)
	}
	srv := server.New(rn, sopts)
	gs := srv.GRPCServer()
	lis, err := listen(n.GRPCAddr)
	if err != nil {
		t.Fatalf("listen %s: %v", n.GRPCAddr, err)
	}
	go gs.Serve(lis)
	conn, err := grpc.NewClient(n.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.Raft, n.Server, n.gs, n.conn, n.raftLis, n.running = rn, srv, gs, conn, raftLis, true
	n.mu.Unlock()
}

// listen listens on addr, retrying while a stopped node's port lingers.
func listen(addr string) (*severableListener, error) {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return newSeverableListener(l), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

// Stop stops node i as a crash would look to its peers: every Raft
// connection to it drops at once, then its servers close and Raft shuts
// down, with no leadership transfer and no membership change.
func (c *Cluster) Stop(i int) {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	n.running = false
	n.raftLis.sever()
	n.Server.Shutdown()
	n.gs.Stop()
	n.conn.Close()
	if err := n.Raft.Close(); err != nil {
		c.T.Logf("close %s: %v", n.ID, err)
	}
}

// Restart starts a stopped node again on its data directory and addresses.
func (c *Cluster) Restart(i int) {
	c.start(i, nil)
}

// Close stops every node.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.Stop(i)
	}
}

// Leader waits (up to 20 s) for a running node to lead and have applied its
// term's barrier, and returns it.
func (c *Cluster) Leader() *Node {
	c.T.Helper()
	var leader *Node
	c.Eventually(20*time.Second, func() error {
		for _, n := range c.Nodes {
			if n.Running() && n.Raft.IsLeader() && n.Raft.Ready() {
				leader = n
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return leader
}

// Followers returns the running nodes other than the current leader.
func (c *Cluster) Followers() []*Node {
	leader := c.Leader()
	var out []*Node
	for _, n := range c.Nodes {
		if n != leader && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Eventually retries check every 50 ms until it succeeds or timeout passes.
func (c *Cluster) Eventually(timeout time.Duration, check func() error) {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitConverged waits until every running node reports the same checksum
// at the same applied index, at or past the highest index any running node
// had applied when it was called, and returns that checksum. (A node's
// checksum may be cached at an older index: two nodes agreeing on an old
// sum is not convergence.)
func (c *Cluster) WaitConverged(timeout time.Duration) string {
	c.T.Helper()
	var target uint64
	for _, n := range c.Nodes {
		if n.Running() {
			target = max(target, n.Raft.Status().AppliedIndex)
		}
	}
	var sum string
	c.Eventually(timeout, func() error {
		var first *sqlraftv1.ChecksumResponse
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cs, err := n.Cluster().Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", n.ID, err)
			}
			if cs.GetAppliedIndex() < target {
				return fmt.Errorf("%s: checksum at %d, want at least %d", n.ID, cs.GetAppliedIndex(), target)
			}
			if first == nil {
				first = cs
				continue
			}
			if cs.GetAppliedIndex() != first.GetAppliedIndex() || cs.GetSha256() != first.GetSha256() {
				return fmt.Errorf("%s at %d (%s…) differs from %d (%s…)", n.ID, cs.GetAppliedIndex(), cs.GetSha256()[:8],
					first.GetAppliedIndex(), first.GetSha256()[:8])
			}
		}
		sum = first.GetSha256()
		return nil
	})
	return sum
}
