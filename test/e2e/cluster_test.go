//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

const (
	peersAlias  = "sqlraft-peers" // the headless service
	clientAlias = "sqlraft"       // the client service
	grpcPort    = "6001"
	raftPort    = "6002"
	expect      = 3
)

// cluster is a set of sqlraftd containers on a private network, named like
// the pods of the StatefulSet in deploy/kubernetes (sqlraft-0, ...).
type cluster struct {
	t       *testing.T
	name    string // unique prefix of this test's Docker objects
	network string
	flags   []string // extra daemon flags for every node
	mounts  []string // extra -v arguments of every node's container
	secure  *secured // TLS and credentials of the test's clients (nil: plaintext)

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address
	ips   map[string]string           // by host; cleared when containers change
}

// newCluster starts n nodes bootstrapping through DNS discovery, in an order
// other than their ordinals, and waits until all are healthy.
func newCluster(t *testing.T, n int, flags ...string) *cluster {
	t.Helper()
	return startCluster(t, n, nil, flags...)
}

// startCluster is newCluster, secured as s says when s is not nil.
func startCluster(t *testing.T, n int, s *secured, flags ...string) *cluster {
	t.Helper()
	safe := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	c := &cluster{t: t, name: runID + "-" + safe, flags: flags, conns: map[string]*grpc.ClientConn{}, ips: map[string]string{}}
	if s != nil {
		c.secure, c.flags, c.mounts = s, append(s.flags(), flags...), s.mounts()
	}
	c.network = c.name
	t.Cleanup(c.cleanup)
	c.docker("network", "create", "--label", c.labels()[0], "--label", c.labels()[1], "--label", c.labels()[2], c.network)
	start := time.Now()
	for i := n - 1; i >= 0; i-- { // highest ordinal first: the bootstrapper is not the first up
		c.start(host(i))
		time.Sleep(300 * time.Millisecond)
	}
	for i := range n {
		c.waitHealthy(host(i), 60*time.Second)
	}
	t.Logf("%d-node cluster formed and healthy in %s", n, time.Since(start).Round(10*time.Millisecond))
	return c
}

func host(i int) string { return "sqlraft-" + strconv.Itoa(i) }

func (c *cluster) labels() []string {
	return []string{label + "=1", label + ".run=" + runID, label + ".pid=" + strconv.Itoa(os.Getpid())}
}

func (c *cluster) container(h string) string { return c.name + "-" + h }

func (c *cluster) docker(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch args[0] {
	case "kill", "stop", "start", "restart", "network", "rm":
		c.mu.Lock()
		clear(c.ips)
		c.mu.Unlock()
	}
	out, err := docker(ctx, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// forget drops the cached address of host h (after a failed call).
func (c *cluster) forget(h string) {
	c.mu.Lock()
	delete(c.ips, h)
	c.mu.Unlock()
}

// start creates and starts the container for host h on a fresh volume.
func (c *cluster) start(h string, extra ...string) {
	c.t.Helper()
	vol := c.container(h) + "-data"
	args := []string{"volume", "create"}
	for _, l := range c.labels() {
		args = append(args, "--label", l)
	}
	c.docker(append(args, vol)...)
	args = []string{"run", "-d", "--name", c.container(h), "--hostname", h, "--network", c.network,
		"--network-alias", h, "--network-alias", peersAlias, "--network-alias", clientAlias,
		"-v", vol + ":/var/lib/sqlraft", "--stop-timeout", "30"}
	for _, m := range c.mounts {
		args = append(args, "-v", m)
	}
	for _, l := range c.labels() {
		args = append(args, "--label", l)
	}
	args = append(args, image,
		"--grpc-addr", ":"+grpcPort, "--raft-addr", ":"+raftPort,
		"--grpc-advertise", h+":"+grpcPort, "--raft-advertise", h+":"+raftPort,
		"--data-dir", "/var/lib/sqlraft/data",
		"--bootstrap-expect", strconv.Itoa(expect), "--discover-dns", peersAlias)
	args = append(append(args, c.flags...), extra...)
	c.docker(args...)
}

// cleanup dumps logs of a failed test, then removes its containers, network
// and volumes.
func (c *cluster) cleanup() {
	c.mu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids, _ := docker(ctx, "ps", "-aq", "--filter", "network="+c.network)
	if c.t.Failed() || os.Getenv("SQLRAFT_E2E_LOGS") != "" {
		for _, id := range strings.Fields(ids) {
			name, _ := docker(ctx, "inspect", "-f", "{{.Name}}", id)
			logs, _ := runCmd(ctx, "docker", "logs", "--tail", "60", id)
			c.t.Logf("---- logs of %s ----\n%s", name, logs)
		}
	}
	names, _ := docker(ctx, "ps", "-aq", "--filter", "name="+c.name+"-")
	if all := strings.Fields(ids + " " + names); len(all) > 0 {
		_, _ = docker(ctx, append([]string{"rm", "-f", "-v"}, all...)...)
	}
	_, _ = docker(ctx, "network", "rm", c.network)
	if vols, _ := docker(ctx, "volume", "ls", "-q", "--filter", "name="+c.name+"-"); vols != "" {
		_, _ = docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(vols)...)...)
	}
}

// ip is the container's current address on the private network ("" when
// it is not running or not connected).
func (c *cluster) ip(h string) string {
	c.mu.Lock()
	ip, ok := c.ips[h]
	c.mu.Unlock()
	if ok {
		return ip
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := docker(ctx, "inspect", "-f", `{{with index .NetworkSettings.Networks "`+c.network+`"}}{{.IPAddress}}{{end}}`, c.container(h))
	if err != nil {
		return ""
	}
	if out != "" {
		c.mu.Lock()
		c.ips[h] = out
		c.mu.Unlock()
	}
	return out
}

// conn returns a cached client connection to host h's gRPC port.
func (c *cluster) conn(h string) (*grpc.ClientConn, error) {
	ip := c.ip(h)
	if ip == "" {
		return nil, fmt.Errorf("%s has no address", h)
	}
	addr := net.JoinHostPort(ip, grpcPort)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c.secure != nil {
		opts = c.secure.dialOptions(h)
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

func (c *cluster) db(h string) sqlraftv1.DatabaseServiceClient {
	cc, err := c.conn(h)
	if err != nil {
		c.t.Fatal(err)
	}
	return sqlraftv1.NewDatabaseServiceClient(cc)
}

func (c *cluster) admin(h string) sqlraftv1.ClusterServiceClient {
	cc, err := c.conn(h)
	if err != nil {
		c.t.Fatal(err)
	}
	return sqlraftv1.NewClusterServiceClient(cc)
}

func (c *cluster) status(h string) (*sqlraftv1.StatusResponse, error) {
	cc, err := c.conn(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := sqlraftv1.NewClusterServiceClient(cc).Status(ctx, &sqlraftv1.StatusRequest{})
	if err != nil {
		c.forget(h)
	}
	return st, err
}

// serving asks host h's grpc.health.v1 about service.
func (c *cluster) serving(h, service string) bool {
	cc, err := c.conn(h)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		c.forget(h)
	}
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

func (c *cluster) waitHealthy(h string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !c.serving(h, "") {
		if time.Since(start) > timeout {
			c.t.Fatalf("%s not healthy after %s", h, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// leader polls hosts until one reports being the leader (and serves the
// sqlraft.v1.Leader health service), and returns it.
func (c *cluster) leader(hosts []string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, h := range hosts {
			if st, err := c.status(h); err == nil && st.GetState() == "Leader" && c.serving(h, "sqlraft.v1.Leader") {
				return h
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader among %v after %s", hosts, timeout)
	return ""
}

// converge waits until every host reports the same checksum at the same
// applied index, at or past the highest index a host had applied when it
// was called (checksums are cached: an old sum shared by two hosts is not
// convergence), and returns that checksum.
func (c *cluster) converge(hosts []string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var target uint64
	for _, h := range hosts {
		if st, err := c.status(h); err == nil {
			target = max(target, st.GetAppliedIndex())
		}
	}
	var last []string
	for time.Now().Before(deadline) {
		last = last[:0]
		for _, h := range hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			sum, err := c.admin(h).Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			cancel()
			if err != nil {
				last = append(last, h+": "+err.Error())
				continue
			}
			if sum.GetAppliedIndex() < target {
				last = append(last, fmt.Sprintf("%s: at %d, want at least %d", h, sum.GetAppliedIndex(), target))
				continue
			}
			last = append(last, fmt.Sprintf("%s@%d", sum.GetSha256(), sum.GetAppliedIndex()))
		}
		if len(last) == len(hosts) && allEqual(last) && !strings.Contains(last[0], ": ") {
			return last[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("checksums did not converge in %s: %v", timeout, last)
	return ""
}

func allEqual(s []string) bool {
	for _, v := range s[1:] {
		if v != s[0] {
			return false
		}
	}
	return true
}

// runCmd runs a command and returns its combined output.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
