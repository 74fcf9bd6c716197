// Package servertest runs real sqlraft clusters inside a test process: each
// node is started by server/embed, as sqlraftd starts one, with its own data
// directory, a Raft gRPC server and a client gRPC server on 127.0.0.1
// ports, and tests talk to it with the generated clients, exactly as a user
// would.
//
// New, Restart and Leader return only once the running nodes agree on a
// ready leader, so a test starts from a cluster a client could use. A test
// on a loaded machine may still meet an election later; Retry retries what
// a real client would (NO_LEADER always, OUTCOME_UNKNOWN only for requests
// that may be repeated) and reports the last error when it gives up.
package servertest

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/eventually"
	"github.com/sqlraft/sqlraft/internal/testnet"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/embed"
)

// Options tune a test cluster.
type Options struct {
	// Configure, when set, adjusts each node's raftnode.Config before start.
	Configure func(i int, cfg *raftnode.Config)
	// Server adjusts each node's server options.
	Server func(i int, opts *server.Options)
	// TLS, when set, starts every node with client TLS and node mutual
	// TLS (tls.go); the test's clients then speak TLS.
	TLS *TLSOptions
}

// Cluster is a set of in-process nodes.
type Cluster struct {
	T          testing.TB
	Nodes      []*Node
	opts       Options
	clientCert *testpki.Issued // the test's client certificate, with TLSOptions.ClientCA
}

// Node is one member: its addresses, its live parts while running, and
// client stubs connected to its client address.
type Node struct {
	ID       string
	Dir      string
	RaftAddr string
	GRPCAddr string
	// TLS names the node's certificate files (with Options.TLS).
	TLS TLSFiles

	mu sync.Mutex
	// firstRaft and firstGRPC are the listeners New opened, until the
	// node's first start serves on them.
	firstRaft, firstGRPC net.Listener
	raftLis              *testnet.SeverableListener
	// Embedded is the running node as server/embed built it; Raft and
	// Server are its parts.
	Embedded *embed.Node
	Raft     *raftnode.Node
	Server   *server.Server
	conn     *grpc.ClientConn
	running  bool
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

// live returns the node's Raft node while it runs, nil otherwise.
func (n *Node) live() *raftnode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	return n.Raft
}

// LeaderTimeout bounds how long New, Restart and Leader wait for the
// running nodes to agree on a ready leader. It is generous on purpose: on a
// loaded machine (the race detector, other work beside the tests) an
// election can take seconds, and a wait that gives up early turns a slow
// machine into a failed test.
const LeaderTimeout = 90 * time.Second

// New starts size nodes bootstrapped as one cluster of voters and waits
// until it has formed: a leader is ready, every node knows it, and every
// node knows every member's client address (so followers can forward).
func New(t testing.TB, size int, opts Options) *Cluster {
	if opts.TLS != nil {
		o := *opts.TLS
		opts.TLS = &o
	}
	c := &Cluster{T: t, opts: opts}
	base := t.TempDir()
	t.Cleanup(c.Close) // before the directories go (cleanups run last first); also when a start fails
	var voters []raftnode.Member
	for i := 0; i < size; i++ {
		n := &Node{ID: fmt.Sprintf("node%d", i), Dir: filepath.Join(base, fmt.Sprintf("node%d", i))}
		// The first start serves on these very listeners: a port found free
		// and closed again could be handed to the next caller (two nodes,
		// or both addresses of one, on the same port).
		n.firstRaft, n.firstGRPC = listenFree(t), listenFree(t)
		n.RaftAddr, n.GRPCAddr = n.firstRaft.Addr().String(), n.firstGRPC.Addr().String()
		c.Nodes = append(c.Nodes, n)
		voters = append(voters, raftnode.Member{ID: n.ID, RaftAddress: n.RaftAddr, Voter: true})
	}
	c.prepareTLS()
	for i := range c.Nodes {
		c.start(i, voters)
	}
	c.Leader()
	c.Eventually(LeaderTimeout, c.addressesKnown)
	return c
}

// addressesKnown reports an error until every running node has every
// member's client address in its replicated node table.
func (c *Cluster) addressesKnown() error {
	for _, n := range c.Nodes {
		rn := n.live()
		if rn == nil {
			continue
		}
		for _, m := range c.Nodes {
			if got := rn.NodeAddress(m.ID); got != m.GRPCAddr {
				return fmt.Errorf("%s has %q as %s's client address, want %q", n.ID, got, m.ID, m.GRPCAddr)
			}
		}
	}
	return nil
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

func listenFree(t testing.TB) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
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

// start starts node i through embed, as sqlraftd would; voters, on a first
// start, is the cluster every node bootstraps with.
func (c *Cluster) start(i int, voters []raftnode.Member) {
	t, n := c.T, c.Nodes[i]
	logger := Logger().With("test-node", n.ID)
	cfg := embed.Config{
		Node: raftnode.Config{ID: n.ID, DataDir: n.Dir, GRPCAdvertise: n.GRPCAddr, Logger: logger},
		// The Raft timeouts are the daemon's defaults, which do not flap on
		// a loaded machine (raftnode/DESIGN.md, "Timeouts on a busy
		// machine"); a test that needs a faster failover sets its own.
		InitialVoters:   voters,
		RetryInterval:   200 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
		Logger:          logger,
	}
	// Read leases on, as in the daemon, unless a test turns them off
	// (negative) or shortens the heartbeat timeout below what they allow.
	cfg.Node.ReadLease = raftnode.DefaultReadLease
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg.Node)
	}
	if hb := cmp.Or(cfg.Node.HeartbeatTimeout, raftnode.DefaultHeartbeatTimeout); cfg.Node.ReadLease > hb/4 || cfg.Node.ReadLease < 0 {
		cfg.Node.ReadLease = max(0, min(cfg.Node.ReadLease, hb/4))
	}
	if c.opts.Server != nil {
		c.opts.Server(i, &cfg.Server)
	}
	raftLis, grpcLis, err := n.listeners()
	if err != nil {
		t.Fatalf("start %s: %v", n.ID, err)
	}
	cfg.Node.RaftListener, cfg.GRPCListener = raftLis, grpcLis
	if o := c.opts.TLS; o != nil {
		cfg.TLS = n.TLS.Config(t, cmp.Or(o.Logger, logger))
	}
	en, err := embed.Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", n.ID, err)
	}
	conn, err := grpc.NewClient(n.GRPCAddr, c.clientCredentials())
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.Embedded, n.Raft, n.Server, n.conn, n.raftLis, n.running = en, en.Raft(), en.Server(), conn, raftLis, true
	n.mu.Unlock()
}

// listeners returns the node's Raft and client listeners: on its first
// start the ones New opened, later new ones on the same addresses.
func (n *Node) listeners() (raftLis *testnet.SeverableListener, grpcLis net.Listener, err error) {
	n.mu.Lock()
	first, firstGRPC := n.firstRaft, n.firstGRPC
	n.firstRaft, n.firstGRPC = nil, nil
	n.mu.Unlock()
	if first != nil {
		return testnet.NewSeverableListener(first), firstGRPC, nil
	}
	if raftLis, err = listen(n.RaftAddr); err != nil {
		return nil, nil, err
	}
	if grpcLis, err = listen(n.GRPCAddr); err != nil {
		raftLis.Close()
		return nil, nil, err
	}
	return raftLis, grpcLis, nil
}

// listen listens on addr, retrying while a stopped node's port lingers.
func listen(addr string) (*testnet.SeverableListener, error) {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return testnet.NewSeverableListener(l), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

// Stop stops node i as a crash would look to its peers: every Raft
// connection to it drops at once, then its servers close and Raft shuts
// down, with no leadership transfer and no membership change.
func (c *Cluster) Stop(i int) {
	if n := c.take(i); n != nil {
		n.raftLis.Sever()
		if err := n.Embedded.Close(); err != nil {
			c.T.Logf("close %s: %v", n.ID, err)
		}
	}
}

// PauseRaft cuts every Raft connection made to node i and refuses new ones
// until ResumeRaft: the node stops hearing from the leader (its own calls
// to its peers still go through), so it falls behind while it keeps
// serving clients. Keep the pause well under the heartbeat timeout, or the
// node starts an election.
func (c *Cluster) PauseRaft(i int) { c.raftListener(i).Pause() }

// ResumeRaft lets node i's peers reconnect after PauseRaft.
func (c *Cluster) ResumeRaft(i int) { c.raftListener(i).Resume() }

func (c *Cluster) raftListener(i int) *testnet.SeverableListener {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.raftLis
}

// take marks node i stopped and closes the test's client connection to
// it; it returns nil when the node was not running.
func (c *Cluster) take(i int) *Node {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	n.running = false
	n.conn.Close()
	return n
}

// Shutdown stops node i the way sqlraftd does on SIGTERM (embed.Node.Stop):
// health NOT_SERVING, leadership handed on, in-flight calls finished, no
// membership change.
func (c *Cluster) Shutdown(i int) {
	if n := c.take(i); n != nil {
		if err := n.Embedded.Stop(); err != nil {
			c.T.Errorf("stop %s: %v", n.ID, err)
		}
	}
}

// Restart starts a stopped node again on its data directory and addresses,
// and waits (as Leader does) until every running node, the restarted one
// included, knows the same ready leader.
func (c *Cluster) Restart(i int) {
	c.T.Helper()
	c.start(i, nil)
	c.Leader()
}

// Close stops every node (and closes the listeners of any that never
// started).
func (c *Cluster) Close() {
	for i, n := range c.Nodes {
		c.Stop(i)
		n.mu.Lock()
		for _, l := range []net.Listener{n.firstRaft, n.firstGRPC} {
			if l != nil {
				l.Close()
			}
		}
		n.firstRaft, n.firstGRPC = nil, nil
		n.mu.Unlock()
	}
}

// Leader waits (up to LeaderTimeout) until the running nodes agree on a
// leader and returns it: exactly one running node leads, it has applied its
// term's barrier (Ready), and every running node names it as the leader,
// with its client address, so a request sent to any of them reaches it.
func (c *Cluster) Leader() *Node {
	c.T.Helper()
	var leader *Node
	c.Eventually(LeaderTimeout, func() (err error) {
		leader, err = c.agreedLeader()
		return err
	})
	return leader
}

// agreedLeader returns the leader every running node knows, or why there is
// none yet.
func (c *Cluster) agreedLeader() (*Node, error) {
	var leader *Node
	running := 0
	for _, n := range c.Nodes {
		rn := n.live()
		if rn == nil {
			continue
		}
		running++
		if rn.IsLeader() {
			if leader != nil {
				return nil, fmt.Errorf("both %s and %s lead", leader.ID, n.ID)
			}
			leader = n
		}
	}
	if running == 0 {
		return nil, fmt.Errorf("no node is running")
	}
	if leader == nil {
		return nil, fmt.Errorf("no running node leads")
	}
	if rn := leader.live(); rn == nil || !rn.Ready() {
		return nil, fmt.Errorf("leader %s is not ready (its term's barrier is not applied, or it lags)", leader.ID)
	}
	for _, n := range c.Nodes {
		rn := n.live()
		if rn == nil {
			continue
		}
		if id, addr := rn.Leader(); id != leader.ID || addr != leader.GRPCAddr {
			return nil, fmt.Errorf("%s knows the leader as %q at %q, want %s at %s", n.ID, id, addr, leader.ID, leader.GRPCAddr)
		}
	}
	return leader, nil
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
	eventually.Within(c.T, timeout, check)
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
