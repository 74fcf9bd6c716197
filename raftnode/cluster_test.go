package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/internal/eventually"
	"github.com/sqlraft/sqlraft/internal/testnet"
	"github.com/sqlraft/sqlraft/raftnode"
)

// This file runs in-process clusters of raftnode.Nodes for raftnode's own
// tests: real Raft over the real gRPC transport on 127.0.0.1 ports, real
// SQLite files, and no client API (the server package is not involved).
// Requests go straight to raftnode.Node's data path.

// clusterTimeout bounds the waits for a leader and for convergence: an
// election on a loaded machine (the race detector, other work beside the
// tests) can take seconds, and a wait that gives up early turns a slow
// machine into a failed test.
const clusterTimeout = 90 * time.Second

// testCluster is a set of in-process nodes bootstrapped as one cluster.
type testCluster struct {
	t     testing.TB
	nodes []*testNode
	cfg   func(i int, cfg *raftnode.Config)
}

// testNode is one member: its directory and Raft address, and its Node
// while it runs.
type testNode struct {
	ID, Dir, RaftAddr string

	mu      sync.Mutex
	first   net.Listener // the listener opened by newCluster, until the first start
	lis     *testnet.SeverableListener
	Raft    *raftnode.Node
	running bool
}

// live returns the node's Raft node while it runs, nil otherwise.
func (n *testNode) live() *raftnode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	return n.Raft
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SQLRAFT_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newCluster starts size voters bootstrapped together (configure adjusts
// each node's Config) and waits for an agreed, ready leader.
func newCluster(t testing.TB, size int, configure func(i int, cfg *raftnode.Config)) *testCluster {
	c := &testCluster{t: t, cfg: configure}
	base := t.TempDir()
	t.Cleanup(c.close)
	var voters []raftnode.Member
	for i := 0; i < size; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &testNode{ID: fmt.Sprintf("node%d", i), Dir: filepath.Join(base, fmt.Sprintf("node%d", i)),
			RaftAddr: l.Addr().String(), first: l}
		c.nodes = append(c.nodes, n)
		voters = append(voters, raftnode.Member{ID: n.ID, RaftAddress: n.RaftAddr, Voter: true})
	}
	for i := range c.nodes {
		c.start(i)
		if err := c.nodes[i].Raft.BootstrapVoters(voters); err != nil {
			t.Fatal(err)
		}
	}
	c.leader()
	return c
}

func (c *testCluster) start(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	l := n.first
	n.first = nil
	n.mu.Unlock()
	var err error
	if l == nil {
		for attempt := 0; attempt < 50; attempt++ { // a stopped node's port may linger
			if l, err = net.Listen("tcp", n.RaftAddr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			c.t.Fatalf("listen for %s: %v", n.ID, err)
		}
	}
	lis := testnet.NewSeverableListener(l)
	cfg := raftnode.Config{ID: n.ID, DataDir: n.Dir, RaftListener: lis, Logger: testLogger().With("test-node", n.ID)}
	if c.cfg != nil {
		c.cfg(i, &cfg)
	}
	rn, err := raftnode.New(cfg)
	if err != nil {
		lis.Close()
		c.t.Fatalf("start %s: %v", n.ID, err)
	}
	n.mu.Lock()
	n.Raft, n.lis, n.running = rn, lis, true
	n.mu.Unlock()
}

// stop stops node i as a crash looks to its peers: its Raft connections
// drop at once, then it closes.
func (c *testCluster) stop(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return
	}
	n.running = false
	n.lis.Sever()
	if err := n.Raft.Close(); err != nil {
		c.t.Logf("close %s: %v", n.ID, err)
	}
}

// restart starts a stopped node on its directory and address, and waits
// for an agreed leader.
func (c *testCluster) restart(i int) {
	c.start(i)
	c.leader()
}

func (c *testCluster) close() {
	for i, n := range c.nodes {
		c.stop(i)
		n.mu.Lock()
		if n.first != nil {
			n.first.Close()
		}
		n.mu.Unlock()
	}
}

// leader waits until exactly one running node leads, it is ready, and
// every running node knows it.
func (c *testCluster) leader() *testNode {
	var leader *testNode
	c.eventually(clusterTimeout, func() error {
		leader = nil
		for _, n := range c.nodes {
			if rn := n.live(); rn != nil && rn.IsLeader() {
				if leader != nil {
					return fmt.Errorf("both %s and %s lead", leader.ID, n.ID)
				}
				leader = n
			}
		}
		if leader == nil {
			return errors.New("no running node leads")
		}
		if !leader.live().Ready() {
			return fmt.Errorf("leader %s is not ready", leader.ID)
		}
		for _, n := range c.nodes {
			if rn := n.live(); rn != nil {
				if id, _ := rn.Leader(); id != leader.ID {
					return fmt.Errorf("%s knows the leader as %q, want %s", n.ID, id, leader.ID)
				}
			}
		}
		return nil
	})
	return leader
}

// followers returns the running nodes other than the leader.
func (c *testCluster) followers() []*testNode {
	leader := c.leader()
	var out []*testNode
	for _, n := range c.nodes {
		if n != leader && n.live() != nil {
			out = append(out, n)
		}
	}
	return out
}

// eventually retries check until it succeeds or timeout passes.
func (c *testCluster) eventually(timeout time.Duration, check func() error) {
	c.t.Helper()
	eventually.Within(c.t, timeout, check)
}

// waitConverged waits until every running node has applied at least the
// highest index any of them had applied when called, with equal checksums
// at equal indexes, and returns the checksum.
func (c *testCluster) waitConverged(timeout time.Duration) string {
	c.t.Helper()
	var target uint64
	for _, n := range c.nodes {
		if rn := n.live(); rn != nil {
			target = max(target, rn.Status().AppliedIndex)
		}
	}
	var sum string
	c.eventually(timeout, func() error {
		var first *raftnode.Checksum
		for _, n := range c.nodes {
			rn := n.live()
			if rn == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cs, err := rn.Checksum(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", n.ID, err)
			}
			if cs.Index < target {
				return fmt.Errorf("%s: checksum at %d, want at least %d", n.ID, cs.Index, target)
			}
			if first == nil {
				first = &cs
			} else if cs.Index != first.Index || cs.SHA256 != first.SHA256 {
				return fmt.Errorf("%s at %d (%s) differs from %d (%s)", n.ID, cs.Index, cs.SHA256, first.Index, first.SHA256)
			}
		}
		sum = first.SHA256
		return nil
	})
	return sum
}

// execute runs sql on the leader (retrying while leadership moves) and
// fails the test on any error.
func execute(t testing.TB, c *testCluster, sql ...string) {
	t.Helper()
	if err := tryExecute(c, false, sql...); err != nil {
		t.Fatal(err)
	}
}

// tryExecute runs sql on whichever node leads, retrying when no node led
// (nothing was proposed), and, when idempotent, also when leadership moved
// while it was in flight. It returns the request's error or its first
// failed statement's.
func tryExecute(c *testCluster, idempotent bool, sql ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	for {
		leader := c.leader()
		res, err := leader.Raft.Execute(ctx, stmts(sql...), false)
		retry := errors.Is(err, raftnode.ErrNotLeader) || errors.Is(err, raftnode.ErrNoLeader) ||
			idempotent && errors.Is(err, raftnode.ErrOutcomeUnknown)
		if err != nil && retry && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("via %s: %w", leader.ID, err)
		}
		for _, r := range res.Results {
			if e := r.GetExecute().GetError() + r.GetQuery().GetError(); e != "" {
				return fmt.Errorf("via %s: %s", leader.ID, e)
			}
		}
		return nil
	}
}
