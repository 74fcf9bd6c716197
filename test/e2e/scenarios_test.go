//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// Bounds this suite promises (and asserts).
const (
	failoverBound = 10 * time.Second // killed leader -> a new leader elected
	resumeBound   = 15 * time.Second // killed leader -> writes acknowledged again
	catchUpBound  = 60 * time.Second // reconnected/restarted node -> equal checksums
)

var threeHosts = []string{host(0), host(1), host(2)}

// runClient runs e2eclient in a container on the cluster's network, reaching
// the cluster through the client service name.
func (c *cluster) runClient(args ...string) string {
	c.t.Helper()
	base := []string{"run", "--rm", "--network", c.network}
	for _, l := range c.labels() {
		base = append(base, "--label", l)
	}
	base = append(base, clientImage, "-addr", "dns:///"+clientAlias+":"+grpcPort)
	return c.docker(append(base, args...)...)
}

func (c *cluster) logs(h string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := runCmd(ctx, "docker", "logs", c.container(h))
	return out
}

var bootstrapLine = regexp.MustCompile(`discovery decided.*action=bootstrap`)

// Scenario 1: the cluster forms through DNS discovery (exactly one node
// bootstraps); a client writes through the client service name; every node
// answers reads at every consistency level.
func TestFormWriteReadEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	var boots []string
	for _, h := range threeHosts {
		if bootstrapLine.MatchString(c.logs(h)) {
			boots = append(boots, h)
		}
	}
	if len(boots) != 1 {
		t.Fatalf("want exactly one bootstrapping node, got %v", boots)
	}
	t.Logf("bootstrapped by %s", boots[0])
	checkMembers(t, c, threeHosts)

	out := c.runClient("-exec", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
	t.Logf("client: %s", out)
	const writes = 6
	for i := range writes {
		out = c.runClient("-exec", fmt.Sprintf("INSERT INTO t(name) VALUES('via service %d')", i))
		t.Logf("client: %s", out)
	}
	out = c.runClient("-level", "none", "-query", "SELECT * FROM t")
	t.Logf("client: %s", out)

	for _, h := range threeHosts {
		for _, level := range levels {
			want := fmt.Sprint(writes)
			got := ""
			deadline := time.Now().Add(10 * time.Second) // NONE may lag by a moment
			for time.Now().Before(deadline) {
				resp, err := query(c, h, level, "SELECT COUNT(*) FROM t")
				if err == nil {
					got = fmt.Sprint(resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger())
				} else if level != sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE {
					t.Fatalf("%s at %s: %v", h, level, err)
				}
				if got == want || level != sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != want {
				t.Errorf("%s at %s: count %s, want %s", h, level, got, want)
			}
		}
	}
	leaders := 0
	for _, h := range threeHosts {
		if c.serving(h, "sqlraft.v1.Leader") {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d nodes serve sqlraft.v1.Leader, want 1", leaders)
	}
	t.Logf("checksum %s", c.converge(threeHosts, catchUpBound))
}

// checkMembers asserts the configuration lists exactly hosts, as voters,
// with their DNS names as addresses.
func checkMembers(t *testing.T, c *cluster, hosts []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.admin(hosts[0]).Nodes(ctx, &sqlraftv1.NodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range resp.GetNodes() {
		got = append(got, n.GetId())
		if !n.GetVoter() || n.GetRaftAddress() != n.GetId()+":"+raftPort {
			t.Errorf("node %s: voter=%v raft=%s", n.GetId(), n.GetVoter(), n.GetRaftAddress())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, hosts) {
		t.Fatalf("members %v, want %v", got, hosts)
	}
}

// Scenario 2: docker kill the leader; a new leader within failoverBound;
// writes resume; the killed container restarts on its volume, catches up,
// and the checksums are equal.
func TestKillLeader(t *testing.T) {
	c := newCluster(t, 3)
	w := newWriter(c, threeHosts, "w")
	w.createTable(host(0))
	w.writeN(50)
	old := c.leader(threeHosts, 10*time.Second)
	var rest []string
	for _, h := range threeHosts {
		if h != old {
			rest = append(rest, h)
		}
	}
	w.hosts = rest
	w.start(5 * time.Millisecond)
	time.Sleep(time.Second)
	killed := time.Now()
	c.docker("kill", c.container(old))
	nl := c.leader(rest, failoverBound)
	failover := time.Since(killed)
	for w.lastAckTime().Before(killed.Add(failover)) && time.Since(killed) < resumeBound {
		time.Sleep(20 * time.Millisecond)
	}
	resumed := time.Since(killed)
	t.Logf("killed leader %s; new leader %s after %s; writes acknowledged again after %s",
		old, nl, failover.Round(time.Millisecond), resumed.Round(time.Millisecond))
	if resumed >= resumeBound {
		t.Fatalf("writes did not resume within %s", resumeBound)
	}
	time.Sleep(time.Second)
	c.docker("start", c.container(old))
	t.Logf("%s restarted on its volume, healthy after %s", old, c.waitHealthy(old, catchUpBound).Round(time.Millisecond))
	w.stop()
	w.verify(nl)
	t.Logf("checksum %s", c.converge(threeHosts, catchUpBound))
	checkMembers(t, c, threeHosts)
	if logs := c.logs(old); !strings.Contains(logs, "action=resume") {
		t.Errorf("%s did not resume from its volume after the restart", old)
	}
	boots := 0
	for _, h := range threeHosts {
		boots += len(bootstrapLine.FindAllString(c.logs(h), -1))
	}
	if boots != 1 {
		t.Errorf("%d bootstrap decisions over the cluster's life, want 1", boots)
	}
}

// Scenario 3: a follower is cut off the network while writes continue past
// the snapshot threshold and the leader compacts its log beyond the
// follower's last entry; reconnected, it can only catch up by installing a
// snapshot, and its checksum matches.
func TestPartitionedFollowerSnapshotInstall(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-threshold", "100", "--trailing-logs", "20", "--snapshot-interval", "1s")
	w := newWriter(c, threeHosts, "p")
	w.createTable(host(0))
	w.writeN(20)
	c.converge(threeHosts, catchUpBound)
	l := c.leader(threeHosts, 10*time.Second)
	f := threeHosts[0]
	if f == l {
		f = threeHosts[1]
	}
	before, err := c.status(f)
	if err != nil {
		t.Fatal(err)
	}
	c.docker("network", "disconnect", c.network, c.container(f))
	t.Logf("disconnected follower %s at last log index %d", f, before.GetLastLogIndex())
	w.hosts = []string{l}
	w.writeN(400)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := c.admin(l).Snapshot(ctx, &sqlraftv1.SnapshotRequest{})
	if err != nil {
		t.Fatalf("snapshot on leader: %v", err)
	}
	lst, err := c.status(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s: snapshot %s at index %d; log now %d..%d", l, snap.GetId(), snap.GetIndex(), lst.GetFirstLogIndex(), lst.GetLastLogIndex())
	if lst.GetFirstLogIndex() <= before.GetLastLogIndex()+1 {
		t.Fatalf("leader still has entry %d the follower needs; the test would not force a snapshot install", before.GetLastLogIndex()+1)
	}
	c.docker("network", "connect", "--alias", f, "--alias", peersAlias, "--alias", clientAlias, c.network, c.container(f))
	reconnected := time.Now()
	sum := c.converge(threeHosts, catchUpBound)
	t.Logf("reconnected %s caught up in %s; checksum %s", f, time.Since(reconnected).Round(time.Millisecond), sum)
	fst, err := c.status(f)
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, s := range fst.GetSnapshot().GetSnapshots() {
		idx = append(idx, s.GetIndex())
	}
	t.Logf("follower %s now: applied %d, log %d..%d, snapshots at %v", f, fst.GetAppliedIndex(), fst.GetFirstLogIndex(), fst.GetLastLogIndex(), idx)
	if fst.GetAppliedIndex() < snap.GetIndex() {
		t.Fatalf("follower applied %d < the leader's snapshot index %d", fst.GetAppliedIndex(), snap.GetIndex())
	}
	// hashicorp/raft logs this (at INFO) once a follower has restored a
	// snapshot sent by the leader; catching up by log append does not.
	if !strings.Contains(c.logs(f), "Installed remote snapshot") {
		t.Errorf("follower %s caught up without installing the leader's snapshot: the leader still served "+
			"entries below its first log index %d", f, lst.GetFirstLogIndex())
	}
	w.verify(l)
}

// Scenario 4: rolling restart (SIGTERM, wait healthy, next) while a client
// writes continuously: no acknowledged write is lost, and every error the
// client saw was retryable (and retried).
func TestRollingRestart(t *testing.T) {
	c := newCluster(t, 3)
	w := newWriter(c, threeHosts, "r")
	w.createTable(host(0))
	w.start(2 * time.Millisecond)
	time.Sleep(2 * time.Second)
	for _, h := range []string{host(2), host(1), host(0)} {
		wasLeader := c.serving(h, "sqlraft.v1.Leader")
		start := time.Now()
		c.docker("stop", "-t", "30", c.container(h)) // SIGTERM, then wait for exit
		stopped := time.Since(start)
		c.docker("start", c.container(h))
		healthy := c.waitHealthy(h, catchUpBound)
		for _, o := range threeHosts {
			c.waitHealthy(o, catchUpBound)
		}
		t.Logf("%s (leader=%v): stopped in %s, healthy %s after start", h, wasLeader, stopped.Round(time.Millisecond), healthy.Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	w.stop()
	if len(w.ackedIDs()) == 0 {
		t.Fatal("no write acknowledged")
	}
	w.verify(c.leader(threeHosts, 10*time.Second))
	t.Logf("checksum %s", c.converge(threeHosts, catchUpBound))
}

// Scenario 5: a fourth node joins as a non-voter (discovering the formed
// cluster), serves NONE reads locally, and is removed again.
func TestScaleOutNonVoter(t *testing.T) {
	c := newCluster(t, 3)
	w := newWriter(c, threeHosts, "s")
	w.createTable(host(0))
	w.writeN(25)
	extra := host(3)
	c.start(extra, "--non-voter")
	t.Logf("%s healthy after %s", extra, c.waitHealthy(extra, catchUpBound).Round(time.Millisecond))
	l := c.leader(threeHosts, 10*time.Second)
	n := findNode(t, c, l, extra)
	if n == nil || n.GetVoter() {
		t.Fatalf("%s should be a non-voter member: %v", extra, n)
	}
	var rows []*sqlraftv1.Row
	deadline := time.Now().Add(10 * time.Second)
	for len(rows) != 25 && time.Now().Before(deadline) {
		resp, err := query(c, extra, sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE, "SELECT id FROM s")
		if err == nil {
			rows = resp.GetResults()[0].GetRows()
			if resp.GetHeader().GetNodeId() != extra {
				t.Fatalf("NONE read answered by %s, want %s (local)", resp.GetHeader().GetNodeId(), extra)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows) != 25 {
		t.Fatalf("non-voter NONE read: %d rows, want 25", len(rows))
	}
	w.hosts = []string{extra}
	w.writeN(5) // forwarded to the leader
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.admin(host(1)).Remove(ctx, &sqlraftv1.RemoveRequest{Id: extra}); err != nil {
		t.Fatalf("remove via a follower: %v", err)
	}
	if findNode(t, c, l, extra) != nil {
		t.Fatalf("%s still listed after Remove", extra)
	}
	c.docker("stop", "-t", "30", c.container(extra))
	checkMembers(t, c, threeHosts)
	w.verify(l)
	t.Logf("checksum %s", c.converge(threeHosts, catchUpBound))
}

func findNode(t *testing.T, c *cluster, via, id string) *sqlraftv1.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.admin(via).Nodes(ctx, &sqlraftv1.NodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range resp.GetNodes() {
		if n.GetId() == id {
			return n
		}
	}
	return nil
}
