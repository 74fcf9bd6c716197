package raftlog

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// listFSM is a state machine that records the commands it applies.
type listFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return listSnapshot(f.list()), nil }

func (f *listFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var cmds []string
	if err := json.NewDecoder(rc).Decode(&cmds); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = cmds
	return nil
}

type listSnapshot []string

func (s listSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (listSnapshot) Release() {}

// raftNode is one Raft server on a Store with faults, over raft's
// in-memory transport.
type raftNode struct {
	id     string
	dir    string
	faults *faults
	store  *Store
	fsm    *listFSM
	trans  *raft.InmemTransport
	raft   *raft.Raft
}

// raftCluster is three raftNodes on 16 KiB segments, so rotations are
// frequent. Snapshots are off until snapshotOften: an install replaces the
// follower's log, and with it a wedged raft-wal tail, and would hide a
// store that cannot recover from a failed append by itself.
type raftCluster struct {
	t     *testing.T
	nodes []*raftNode
	log   hclog.Logger
	snaps raft.ReloadableConfig
}

func newRaftCluster(t *testing.T) *raftCluster {
	logger, _ := testLogger(t)
	c := &raftCluster{t: t, log: logger}
	c.snaps = raft.ReloadableConfig{SnapshotThreshold: 1 << 40, SnapshotInterval: 50 * time.Millisecond, TrailingLogs: 1 << 40}
	base := tempDir(t)
	var servers []raft.Server
	for i := 0; i < 3; i++ {
		n := &raftNode{id: fmt.Sprintf("n%d", i+1), dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)), faults: newFaults()}
		servers = append(servers, raft.Server{ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.id)})
		c.nodes = append(c.nodes, n)
	}
	for i := range c.nodes {
		c.start(i)
	}
	if err := c.nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

// start starts node i on its directory, connected to the running nodes.
func (c *raftCluster) start(i int) {
	n := c.nodes[i]
	var err error
	opts := Options{Logger: c.log.Named(n.id), SegmentSize: 16 << 10, wrapVFS: n.faults.wrapVFS, wrapMeta: n.faults.wrapMeta}
	if n.store, err = Open(filepath.Join(n.dir, "raft"), opts); err != nil {
		c.t.Fatal(err)
	}
	// Snapshots are never reaped: raft's FileSnapshotStore reaps with
	// os.RemoveAll, which fails under wine (scripts/test-windows.sh), and
	// then fails the snapshot.
	snaps, err := raft.NewFileSnapshotStore(n.dir, 1000, io.Discard)
	if err != nil {
		c.t.Fatal(err)
	}
	_, n.trans = raft.NewInmemTransport(raft.ServerAddress(n.id))
	for _, p := range c.nodes {
		if p != n && p.raft != nil {
			p.trans.Connect(n.trans.LocalAddr(), n.trans)
			n.trans.Connect(p.trans.LocalAddr(), p.trans)
		}
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(n.id)
	cfg.Logger = c.log.Named(n.id + "-raft")
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 200*time.Millisecond, 200*time.Millisecond
	cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 100*time.Millisecond, 5*time.Millisecond
	cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs = c.snaps.SnapshotThreshold, c.snaps.SnapshotInterval, c.snaps.TrailingLogs
	n.fsm = &listFSM{}
	if n.raft, err = raft.NewRaft(cfg, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		c.t.Fatal(err)
	}
}

// snapshotOften makes every node snapshot every 40 entries and keep 20.
func (c *raftCluster) snapshotOften() {
	c.snaps = raft.ReloadableConfig{SnapshotThreshold: 40, SnapshotInterval: 50 * time.Millisecond, TrailingLogs: 20}
	for _, n := range c.nodes {
		if n.raft == nil {
			continue
		}
		rc := n.raft.ReloadableConfig()
		rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = c.snaps.SnapshotThreshold, c.snaps.SnapshotInterval, c.snaps.TrailingLogs
		if err := n.raft.ReloadConfig(rc); err != nil {
			c.t.Fatal(err)
		}
	}
}

// stop shuts node i down and disconnects it.
func (c *raftCluster) stop(i int) {
	n := c.nodes[i]
	if n.raft == nil {
		return
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		c.t.Error(err)
	}
	n.raft = nil
	for _, p := range c.nodes {
		if p != n && p.trans != nil {
			p.trans.Disconnect(n.trans.LocalAddr())
		}
	}
	if err := n.store.Close(); err != nil {
		c.t.Error(err)
	}
}

// leader waits for a leader and returns its index.
func (c *raftCluster) leader() int {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader within 60s")
	return -1
}

// apply applies commands from to to (inclusive) through whichever node
// leads, retrying a command whose append failed.
func (c *raftCluster) apply(from, to int) {
	for k := from; k <= to; k++ {
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if err = c.nodes[c.leader()].raft.Apply([]byte(fmt.Sprint("c", k)), 10*time.Second).Error(); err == nil {
				break
			}
		}
		if err != nil {
			c.t.Fatalf("apply c%d: %v", k, err)
		}
	}
}

// converged waits until every running node applied the same commands, among
// them c1 to cn.
func (c *raftCluster) converged(n int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var lists [][]string
		for _, node := range c.nodes {
			if node.raft != nil {
				lists = append(lists, node.fsm.list())
			}
		}
		same := true
		for _, l := range lists[1:] {
			same = same && slices.Equal(l, lists[0])
		}
		if same && hasAll(lists[0], n) {
			return
		}
		if time.Now().After(deadline) {
			for i, l := range lists {
				c.t.Logf("node %d applied %d commands, last %v", i, len(l), l[max(0, len(l)-3):])
			}
			c.t.Fatalf("nodes did not converge on c1-c%d within 60s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logsEqual waits until every running node's log ends where the leader's
// does, with the same entry there.
func (c *raftCluster) logsEqual() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := c.nodes[c.leader()]
		last := l.raft.LastIndex()
		var want raft.Log
		err := l.store.GetLog(last, &want)
		ok := err == nil
		for _, n := range c.nodes {
			var got raft.Log
			if n.raft != nil && (n.store.GetLog(last, &got) != nil || got.Term != want.Term || string(got.Data) != string(want.Data)) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("logs differ at the leader's last index %d after 60s", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasAll(cmds []string, n int) bool {
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[c] = true
	}
	for k := 1; k <= n; k++ {
		if !seen[fmt.Sprint("c", k)] {
			return false
		}
	}
	return true
}

// TestRaftRetriesFailedAppends runs Raft on the store with appends failing
// as on Windows (entries synced, the call failed) on a follower, on the
// leader, and on a follower's first appends after a snapshot install. Raft
// retries each failed append; every node must converge. On raft-wal alone
// the first two wedge the node for good.
func TestRaftRetriesFailedAppends(t *testing.T) {
	c := newRaftCluster(t)
	c.apply(1, 20)
	c.converged(20)

	f := (c.leader() + 1) % 3
	c.nodes[f].faults.arm(faultSyncAfter, 3)
	c.apply(21, 60)
	c.converged(60)
	if c.nodes[f].faults.hits(faultSyncAfter) == 0 {
		t.Error("the follower's appends never failed")
	}

	l := c.leader()
	c.nodes[l].faults.arm(faultSyncAfter, 1)
	c.apply(61, 100)
	c.converged(100)
	if c.nodes[l].faults.hits(faultSyncAfter) != 1 {
		t.Error("the leader's append never failed")
	}

	c.snapshotOften()
	f = (c.leader() + 1) % 3
	stoppedAt := c.nodes[f].raft.LastIndex()
	c.stop(f)
	c.apply(101, 300)
	// The leader's log then starts past f's: f needs a snapshot.
	if err := c.nodes[c.leader()].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	c.nodes[f].faults.arm(faultNewFileSync, 3)
	c.start(f)
	c.apply(301, 320)
	c.converged(320)
	c.apply(321, 340) // appended, not installed
	c.converged(340)
	c.logsEqual()
	if c.nodes[f].faults.hits(faultNewFileSync) == 0 {
		t.Error("the returning follower's appends never failed")
	}
	// An install replaces the whole log: none of the old entries is left.
	if first, err := c.nodes[f].store.FirstIndex(); err != nil || first <= stoppedAt {
		t.Errorf("returning follower's log starts at %d (%v), stopped at %d: no snapshot installed", first, err, stoppedAt)
	}
}
