//go:build wine

package wine

import (
	"github.com/sqlraft/sqlraft/internal/testlog"

	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// node is one sqlraftd.exe process under wine and its client connection.
type node struct {
	id, dir            string // dir is relative to the cluster's base
	grpcAddr, raftAddr string
	args               []string
	cmd                *exec.Cmd
	log                *testlog.Buffer
	exited             chan error
	starts, earlyExits int
	conn               *grpc.ClientConn
	db                 sqlraftv1.DatabaseServiceClient
	cluster            sqlraftv1.ClusterServiceClient
}

// winCluster is three sqlraftd.exe processes sharing one base directory.
type winCluster struct {
	t     *testing.T
	base  string
	wine  string
	exe   string
	nodes []*node
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newWinCluster(t *testing.T, size int, flags ...string) *winCluster {
	exe, wine := os.Getenv("SQLRAFTD_EXE"), os.Getenv("SQLRAFT_WINE")
	if exe == "" || wine == "" {
		t.Fatal("SQLRAFTD_EXE and SQLRAFT_WINE must be set (scripts/test-windows.sh sets them)")
	}
	base, err := os.MkdirTemp("", "sqlraft-wine-seed")
	if err != nil {
		t.Fatal(err)
	}
	c := &winCluster{t: t, base: base, wine: wine, exe: exe}
	t.Cleanup(c.close)
	for i := 0; i < size; i++ {
		n := &node{id: fmt.Sprintf("n%d", i+1), dir: fmt.Sprintf("n%d", i+1), grpcAddr: freeAddr(t), raftAddr: freeAddr(t)}
		n.args = append([]string{"--node-id", n.id, "--data-dir", n.dir, "--grpc-addr", n.grpcAddr, "--raft-addr", n.raftAddr,
			"--log-level", "info"}, flags...)
		if i > 0 {
			n.args = append(n.args, "--join", c.nodes[0].grpcAddr)
		}
		n.log = &testlog.Buffer{}
		c.nodes = append(c.nodes, n)
	}
	return c
}

// start starts node i's process; the data directory is relative to the
// base, which wine maps to a Windows path.
func (c *winCluster) start(i int) {
	n := c.nodes[i]
	n.cmd = exec.Command(c.wine, append([]string{c.exe}, n.args...)...)
	n.cmd.Dir = c.base
	n.cmd.Env = append(os.Environ(), "WINEDEBUG=-all")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	// wine starts helper processes (wineserver, winedevice.exe) that inherit
	// the output pipe and outlive the node: without a WaitDelay, Wait would
	// wait for them after the node exited.
	n.cmd.WaitDelay = 5 * time.Second
	fmt.Fprintf(n.log, "---- start %d\n", n.starts+1)
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.id, err)
	}
	n.starts++
	n.exited = make(chan error, 1)
	c.dial(n)
	go func(cmd *exec.Cmd, ch chan error) { ch <- cmd.Wait() }(n.cmd, n.exited)
}

// dial gives node n a new client connection. A connection to a previous
// process of the node is not reused: when wine kills a process, wineserver
// may keep the process's sockets open (seen with the server side of a
// client's established connection, still open minutes after the kill), so
// the old connection never breaks and every call on it times out. Windows
// resets a terminated process's connections; the harness reconnects, as a
// client does after a node restarts.
func (c *winCluster) dial(n *node) {
	if n.conn != nil {
		n.conn.Close()
	}
	conn, err := grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	n.conn, n.db, n.cluster = conn, sqlraftv1.NewDatabaseServiceClient(conn), sqlraftv1.NewClusterServiceClient(conn)
}

// stop kills node i's process, as a crash would.
func (c *winCluster) stop(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// alive fails the test if a process that should run has exited.
func (c *winCluster) alive() {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		select {
		case err := <-n.exited:
			n.exited <- err
			c.t.Fatalf("%s exited (%v); its log:\n%s", n.id, err, tail(n.log.String(), 60))
		default:
		}
	}
}

func (c *winCluster) close() {
	for i := range c.nodes {
		c.stop(i)
		if c.nodes[i].conn != nil {
			c.nodes[i].conn.Close()
		}
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("---- log of %s ----\n%s", n.id, tail(n.log.String(), 80))
		}
	}
	os.RemoveAll(c.base)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// waitServing waits until node i's health is SERVING, failing if its
// process exits first.
func (c *winCluster) waitServing(i int, timeout time.Duration) {
	c.t.Helper()
	n := c.nodes[i]
	deadline := time.Now().Add(timeout)
	for {
		c.alive()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := healthpb.NewHealthClient(n.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not SERVING after %v (last: %v %v)", n.id, timeout, resp.GetStatus(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leader returns the index of the node that leads, as node i sees it.
func (c *winCluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n.cmd == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := n.cluster.Status(ctx, &sqlraftv1.StatusRequest{})
			cancel()
			if err == nil && st.GetState() == "Leader" {
				return i
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatal("no leader within 60s")
	return -1
}

// status returns node i's status.
func (c *winCluster) status(i int) (*sqlraftv1.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.nodes[i].cluster.Status(ctx, &sqlraftv1.StatusRequest{})
}

// leftovers lists what a node left in its snapshot store's tmp directory and
// any backup or restore directory in its data directory.
func (c *winCluster) leftovers(i int) []string {
	var out []string
	dir := filepath.Join(c.base, c.nodes[i].dir)
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		name := d.Name()
		if strings.Contains(rel, string(filepath.Separator)+"tmp"+string(filepath.Separator)) ||
			strings.HasPrefix(name, "backup-") || strings.HasPrefix(name, "restore-") {
			out = append(out, rel)
		}
		return nil
	})
	return out
}
