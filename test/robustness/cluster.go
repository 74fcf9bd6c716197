//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/eventually"
	"github.com/sqlraft/sqlraft/internal/testnet"
)

// sourceIP is the loopback address node i dials other nodes from; the
// proxies map it back to the node. Clients dial from 127.0.0.1.
func sourceIP(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }

// sourceName maps a connection's source address to the sending node's
// name, or "client".
func sourceName(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.IP.To4()
		if ip != nil && ip[0] == 127 && ip[3] >= 11 && ip[3] < 11+maxNodes {
			return nodeName(int(ip[3]) - 11)
		}
	}
	return "client"
}

const maxNodes = 5

func nodeName(i int) string { return fmt.Sprintf("n%d", i) }

// node is one sqlraftd process and the proxies in front of its two ports.
type node struct {
	i                  int
	name, dir, logPath string
	grpcReal, raftReal string
	client, raft       *Proxy // advertised client and Raft addresses
	args               []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	conn *grpc.ClientConn
}

// cluster is a set of sqlraftd processes on loopback, every link between
// them through a Proxy.
type cluster struct {
	t     testing.TB
	bin   string
	nodes []*node
	extra []string // flags every node gets
}

// startCluster starts n nodes: n0 bootstraps, the others join through it.
func startCluster(t testing.TB, bin, dir string, n int, extra ...string) *cluster {
	c := &cluster{t: t, bin: bin, extra: extra}
	t.Cleanup(c.stopAll)
	for i := 0; i < n; i++ {
		nd := &node{i: i, name: nodeName(i), dir: filepath.Join(dir, nodeName(i)), logPath: filepath.Join(dir, nodeName(i)+".log"),
			grpcReal: testnet.FreeAddr(t), raftReal: testnet.FreeAddr(t)}
		var err error
		if nd.client, err = newProxy(nd.name, nd.grpcReal, sourceName); err != nil {
			t.Fatal(err)
		}
		if nd.raft, err = newProxy(nd.name, nd.raftReal, sourceName); err != nil {
			t.Fatal(err)
		}
		nd.conn, err = grpc.NewClient(nd.client.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	for i, nd := range c.nodes {
		nd.args = append([]string{"--node-id", nd.name, "--data-dir", nd.dir,
			"--grpc-addr", nd.grpcReal, "--grpc-advertise", nd.client.Addr(),
			"--raft-addr", nd.raftReal, "--raft-advertise", nd.raft.Addr(),
			"--raft-heartbeat-timeout", "1s", "--raft-election-timeout", "1s", "--raft-leader-lease-timeout", "1s",
			"--shutdown-timeout", "2s", "--log-level", logLevel()}, extra...)
		if i > 0 {
			nd.args = append(nd.args, "--join", c.nodes[0].client.Addr())
		}
		c.start(nd)
	}
	c.waitMembers(len(c.nodes), 90*time.Second)
	return c
}

// logLevel is the nodes' --log-level: $ROBUSTNESS_LOG_LEVEL, or warn.
func logLevel() string {
	if l := os.Getenv("ROBUSTNESS_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}

// start runs nd's process (again, after a kill, on the same directory).
func (c *cluster) start(nd *node) {
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, nd.args...)
	cmd.Env = append(os.Environ(), "SQLRAFT_DIAL_SOURCE_IP="+sourceIP(nd.i))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
}

// signal sends sig to nd's process, if it runs.
func (nd *node) signal(sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		nd.cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs nd and waits for it to exit.
func (c *cluster) kill(nd *node) {
	nd.signal(syscall.SIGCONT) // a paused process must be able to die
	nd.signal(syscall.SIGKILL)
	nd.mu.Lock()
	done := nd.done
	nd.cmd = nil
	nd.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (nd *node) running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

func (c *cluster) stopAll() {
	for _, nd := range c.nodes {
		c.kill(nd)
		nd.client.Close()
		nd.raft.Close()
		nd.conn.Close()
	}
}

// healAll removes every link fault.
func (c *cluster) healAll() {
	for _, dst := range c.nodes {
		for _, src := range append(c.names(), "client") {
			dst.client.Set(src, linkFault{}, linkFault{})
			dst.raft.Set(src, linkFault{}, linkFault{})
		}
	}
}

func (c *cluster) names() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.name)
	}
	return out
}

// setLink applies in to a → b traffic and out to b's answers, on both of
// b's ports (Raft, and the client port forwarding uses).
func (c *cluster) setLink(a, b *node, in, out linkFault) {
	b.raft.Set(a.name, in, out)
	b.client.Set(a.name, in, out)
}

func (c *cluster) admin(nd *node) sqlraftv1.ClusterServiceClient {
	return sqlraftv1.NewClusterServiceClient(nd.conn)
}

func (c *cluster) db(nd *node) sqlraftv1.DatabaseServiceClient {
	return sqlraftv1.NewDatabaseServiceClient(nd.conn)
}

// leader waits until every running node names the same leader, and
// returns it.
func (c *cluster) leader(timeout time.Duration) *node {
	var leader *node
	c.eventually(timeout, func() error {
		ids := map[string]bool{}
		for _, nd := range c.nodes {
			if !nd.running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := c.admin(nd).Status(ctx, &sqlraftv1.StatusRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", nd.name, err)
			}
			ids[st.GetHeader().GetLeaderId()] = true
		}
		if len(ids) != 1 || ids[""] {
			return fmt.Errorf("nodes name leaders %v", ids)
		}
		for id := range ids {
			leader = c.byName(id)
		}
		if leader == nil {
			return fmt.Errorf("unknown leader")
		}
		return nil
	})
	return leader
}

// status asks nd for its Status.
func (c *cluster) status(nd *node) (*sqlraftv1.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.admin(nd).Status(ctx, &sqlraftv1.StatusRequest{})
}

func (c *cluster) byName(name string) *node {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	return nil
}

func (c *cluster) followers(leader *node) []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd != leader {
			out = append(out, nd)
		}
	}
	return out
}

// waitMembers waits until the cluster lists want voters, each with its
// client address, and a leader every node knows.
func (c *cluster) waitMembers(want int, timeout time.Duration) {
	c.eventually(timeout, func() error {
		for _, nd := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.admin(nd).Nodes(ctx, &sqlraftv1.NodesRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", nd.name, err)
			}
			voters := 0
			for _, m := range resp.GetNodes() {
				if m.GetVoter() && m.GetGrpcAddress() != "" {
					voters++
				}
			}
			if voters != want {
				return fmt.Errorf("%s lists %d voters with addresses, want %d", nd.name, voters, want)
			}
		}
		return nil
	})
	c.leader(timeout)
}

// converge waits until every node reports the same checksum at an applied
// index at or past the highest any node had applied when called.
func (c *cluster) converge(timeout time.Duration) (string, uint64) {
	var target uint64
	for _, nd := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := c.admin(nd).Status(ctx, &sqlraftv1.StatusRequest{}); err == nil {
			target = max(target, st.GetAppliedIndex())
		}
		cancel()
	}
	var sum string
	var index uint64
	c.eventually(timeout, func() error {
		sums := map[string]bool{}
		var idx []uint64
		for _, nd := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cs, err := c.admin(nd).Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", nd.name, err)
			}
			if cs.GetAppliedIndex() < target {
				return fmt.Errorf("%s at %d, want %d", nd.name, cs.GetAppliedIndex(), target)
			}
			sums[fmt.Sprintf("%s@%d", cs.GetSha256(), cs.GetAppliedIndex())] = true
			idx = append(idx, cs.GetAppliedIndex())
			sum, index = cs.GetSha256(), cs.GetAppliedIndex()
		}
		if len(sums) != 1 {
			return fmt.Errorf("checksums differ: %v", idx)
		}
		return nil
	})
	return sum, index
}

// eventually retries check until it succeeds or timeout passes.
func (c *cluster) eventually(timeout time.Duration, check func() error) {
	c.t.Helper()
	eventually.Within(c.t, timeout, check)
}

// logTail returns the last lines of nd's log, for failure reports.
func (nd *node) logTail(lines int) string {
	b, _ := os.ReadFile(nd.logPath)
	all := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
