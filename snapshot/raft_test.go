package snapshot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// testFSM is the smallest FSM wired as raftnode wires the store: Apply
// runs a statement on the writer, Snapshot is Capture, Restore is Install.
type testFSM struct {
	db    *sqlitedb.DB
	store *Store
}

func (f *testFSM) Apply(l *raft.Log) any {
	tx, err := f.db.Begin()
	if err != nil {
		return err
	}
	tx.SetClock(time.Unix(1700000000, 0), l.Index) // as the leader would fix them
	if msg := tx.Run(&sqlraftv1.Statement{Sql: string(l.Data)}, false).GetExecute().GetError(); msg != "" {
		tx.Rollback()
		return fmt.Errorf("%s", msg)
	}
	if err := tx.SetApplied(sqlitedb.Position{Index: l.Index, Term: l.Term}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) { return f.store.Capture(f.db, false) }

func (f *testFSM) Restore(rc io.ReadCloser) error { return f.store.Install(f.db, rc) }

// raftTimeout is the heartbeat, election and leader lease timeout of the
// test nodes. The tests need node 1 to lead from start to end, so it is
// generous: a leader steps down when it has not heard from a quorum for a
// lease timeout, and on a loaded machine (the race detector, other work
// beside the tests, wine) hashicorp/raft's 500 ms lease was seen to lapse.
// Three seconds of silence between goroutines of one process is not load
// but a hang. The price is the first election, 3-6 s after start.
const raftTimeout = 3 * time.Second

type raftNode struct {
	r     *raft.Raft
	fsm   *testFSM
	logs  *raft.InmemStore
	trans *raft.InmemTransport
}

func startNodes(t *testing.T, n int, opts func(i int) Options) []*raftNode {
	nodes := make([]*raftNode, n)
	var servers []raft.Server
	for i := range nodes {
		dir := tempDir(t)
		db, err := sqlitedb.Open(filepath.Join(dir, "live.db"), sqlitedb.Options{AutoCheckpoint: -1})
		if err != nil {
			t.Fatal(err)
		}
		o := opts(i)
		o.FS = NewStrictFS()
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("node", i+1)
		store, err := New(filepath.Join(dir, "snapshots"), o)
		if err != nil {
			t.Fatal(err)
		}
		// An install may take 10 times the timeout: 50 s.
		addr, trans := raft.NewInmemTransportWithTimeout(raft.ServerAddress(fmt.Sprintf("n%d", i+1)), 5*time.Second)
		nodes[i] = &raftNode{fsm: &testFSM{db: db, store: store}, logs: raft.NewInmemStore(), trans: trans}
		servers = append(servers, raft.Server{ID: raft.ServerID(addr), Address: addr})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			a.trans.Connect(b.trans.LocalAddr(), b.trans)
		}
	}
	for i, nd := range nodes {
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(nd.trans.LocalAddr())
		// The tests assume node 1 leads throughout; see raftTimeout.
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = raftTimeout, raftTimeout, raftTimeout
		c.CommitTimeout = 5 * time.Millisecond
		c.SnapshotThreshold, c.SnapshotInterval, c.TrailingLogs = 20, 50*time.Millisecond, 10
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("raft-n%d", i+1), Level: hclog.Warn,
			Output: testWriter{t}})
		r, err := raft.NewRaft(c, nd.fsm, nd.logs, nd.logs, nd.fsm.store, nd.trans)
		if err != nil {
			t.Fatal(err)
		}
		nd.r = r
		if i == 0 {
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.r.Shutdown().Error()
			nd.fsm.store.Close()
			nd.fsm.db.Close()
		}
	})
	waitLeader(t, nodes, nodes[0])
	return nodes
}

// waitLeader waits until want leads and every node knows it as the leader
// (a node that does not know it yet would not follow its appends).
func waitLeader(t *testing.T, nodes []*raftNode, want *raftNode) {
	t.Helper()
	var why string
	ok := waitFor(60*time.Second, func() bool {
		if want.r.State() != raft.Leader {
			why = fmt.Sprintf("%s is %v", want.trans.LocalAddr(), want.r.State())
			return false
		}
		for _, nd := range nodes {
			if addr, _ := nd.r.LeaderWithID(); addr != want.trans.LocalAddr() {
				why = fmt.Sprintf("%s knows the leader as %q", nd.trans.LocalAddr(), addr)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("no agreed leader: %s", why)
	}
}

func apply(t *testing.T, r *raft.Raft, sql string) {
	t.Helper()
	f := r.Apply([]byte(sql), 30*time.Second)
	if err := f.Error(); err != nil {
		// The tests need one leader throughout: say what became of it.
		addr, _ := r.LeaderWithID()
		t.Fatalf("apply %.40q: %v (this node is %v in term %d; the leader is %q)", sql, err, r.State(), r.CurrentTerm(), addr)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		t.Fatal(err)
	}
}

// TestRaftInstallDuringSnapshots runs the store under hashicorp/raft (in
// memory transport): node 3 falls behind the leader's truncated log and
// must be sent a snapshot; its receiver holds the stream open until the
// leader, writing all along, has taken snapshots, truncated its log and had
// a consolidation wait for the stream (the test decides when, so a slow
// machine makes the stream longer rather than the test fail); node 3
// converges.
func TestRaftInstallDuringSnapshots(t *testing.T) {
	// Node 3's first write of the first install waits for release (at most
	// holdLimit, under the lease idle timeout); later writes and installs
	// run at full speed.
	const holdLimit = 25 * time.Second
	slow, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var held atomic.Bool
	nodes := startNodes(t, 3, func(i int) Options {
		o := Options{ConsolidateAfter: 3}
		if i == 2 {
			o.OnReceive = func(int) {
				select {
				case <-slow:
					if held.CompareAndSwap(false, true) {
						select {
						case <-release:
						case <-time.After(holdLimit):
						}
					}
				default:
				}
			}
		}
		return o
	})
	t.Cleanup(releaseOnce) // before the nodes shut down, should the test fail while the stream is held
	leader := nodes[0]     // the only node bootstrapped; startNodes waited for it
	first := leaveNode3Behind(t, nodes)
	close(slow)
	reconnectNode3(nodes)
	ls := leader.fsm.store
	if !waitFor(30*time.Second, func() bool { return ls.Stats().LeasesHeld > 0 }) {
		t.Fatal("leader never streamed a snapshot")
	}
	start, consolsAtStart, firstAtStart := ls.Stats(), ls.Stats().Consolidations, first
	var duringStream []Stats
	released := false // whether the test has let the stream finish
	for ls.Stats().LeasesHeld > 0 {
		apply(t, leader.r, "INSERT INTO t(v) VALUES(randomblob(3000))")
		st := ls.Stats()
		duringStream = append(duringStream, st)
		if f, _ := leader.logs.FirstIndex(); !released && st.Created-start.Created >= 6 && f > firstAtStart && st.LeaseWaits > 0 {
			releaseOnce() // enough happened during the stream: let it finish
			released = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	end := duringStream[len(duringStream)-1]
	first, _ = leader.logs.FirstIndex()
	t.Logf("stream: %d snapshots, first log index %d -> %d, lease waits %d, consolidations %d -> %d",
		end.Created-start.Created, firstAtStart, first, end.LeaseWaits, consolsAtStart, end.Consolidations)
	if end.Created-start.Created < 5 || first <= firstAtStart {
		t.Fatalf("snapshots or log truncation stalled during the stream: %+v", end)
	}
	if end.Consolidations != consolsAtStart || end.LeaseWaits == 0 {
		t.Fatalf("consolidation did not wait for the stream: %+v", end)
	}
	for _, st := range append(duringStream, ls.Stats()) {
		if st.LastError != "" {
			t.Fatalf("snapshot error: %s", st.LastError)
		}
	}
	want := leader.r.AppliedIndex()
	if !waitFor(60*time.Second, func() bool { return nodes[2].r.AppliedIndex() >= want }) {
		t.Fatalf("node 3 at %d, leader at %d", nodes[2].r.AppliedIndex(), want)
	}
	if !waitFor(30*time.Second, func() bool { return ls.Stats().Consolidations > consolsAtStart }) {
		t.Fatal("consolidation did not run after the stream closed")
	}
	checkSameContent(t, nodes, want)
	// Node 3's own snapshots, taken while installs replaced its database,
	// are skipped, not failed.
	st3 := nodes[2].fsm.store.Stats()
	t.Logf("node 3: %d snapshots stored, %d captures superseded by an install", st3.Created, st3.Superseded)
	if st3.LastError != "" {
		t.Fatalf("node 3 snapshot error: %s", st3.LastError)
	}
}

// leaveNode3Behind has the leader (node 1) create table t, cuts node 3 off
// and writes until the leader's log no longer holds what node 3 lacks. It
// returns the leader's first log index then.
func leaveNode3Behind(t *testing.T, nodes []*raftNode) uint64 {
	t.Helper()
	leader := nodes[0]
	apply(t, leader.r, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	for _, nd := range nodes[:2] {
		nd.trans.Disconnect("n3")
	}
	nodes[2].trans.DisconnectAll()
	for i := 0; i < 100; i++ {
		apply(t, leader.r, "INSERT INTO t(v) VALUES(randomblob(3000))")
	}
	first, _ := leader.logs.FirstIndex()
	if !waitFor(30*time.Second, func() bool { first, _ = leader.logs.FirstIndex(); return first > 20 }) {
		t.Fatalf("leader log not truncated (first index %d)", first)
	}
	return first
}

// reconnectNode3 undoes leaveNode3Behind's cut.
func reconnectNode3(nodes []*raftNode) {
	for _, nd := range nodes[:2] {
		nd.trans.Connect("n3", nodes[2].trans)
		nodes[2].trans.Connect(nd.trans.LocalAddr(), nd.trans)
	}
}

// checkSameContent waits until every node's database has applied index
// want (Raft counts an entry applied when it hands it to the FSM) and
// checks that they hold the same content.
func checkSameContent(t *testing.T, nodes []*raftNode, want uint64) {
	t.Helper()
	sums := make([]string, len(nodes))
	for i, nd := range nodes {
		waitFor(30*time.Second, func() bool {
			pos, err := nd.fsm.db.Applied(context.Background())
			return err == nil && pos.Index >= want
		})
		pos, sum, err := nd.fsm.db.Checksum(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		res, _, _ := nd.fsm.db.Query(context.Background(), []*sqlraftv1.Statement{{Sql: "SELECT count(*) FROM t"}})
		if len(res) > 0 && len(res[0].Rows) > 0 {
			n = res[0].Rows[0].Values[0].GetInteger()
		}
		t.Logf("node %d: applied %d (raft %d), %d rows, checksum %s", i+1, pos.Index, nd.r.AppliedIndex(), n, sum[:12])
		sums[i] = sum
		if sum != sums[0] {
			t.Fatalf("checksums differ: %v", sums)
		}
	}
}

// TestRaftInstallStalledMidStream: node 3 stops reading in the middle of an
// install without breaking the connection (a hung peer). The leader's lease
// is revoked after the idle timeout, its files are released and the
// pending consolidation runs; when node 3 resumes, its read fails, and the
// next attempt installs the snapshot.
func TestRaftInstallStalledMidStream(t *testing.T) {
	stall, resume := make(chan struct{}), make(chan struct{})
	var writes atomic.Int32
	nodes := startNodes(t, 3, func(i int) Options {
		o := Options{ConsolidateAfter: 2, LeaseIdleTimeout: time.Second}
		if i == 2 {
			o.OnReceive = func(int) {
				select {
				case <-stall:
					if writes.Add(1) == 3 {
						<-resume
					}
				default:
				}
			}
		}
		return o
	})
	defer func() {
		select {
		case <-resume:
		default:
			close(resume)
		}
	}()
	leader := nodes[0] // the only node bootstrapped; startNodes waited for it
	leaveNode3Behind(t, nodes)
	close(stall)
	reconnectNode3(nodes)
	ls := leader.fsm.store
	if !waitFor(30*time.Second, func() bool { return writes.Load() >= 3 && ls.Stats().LeasesHeld > 0 }) {
		t.Fatal("stream did not stall")
	}
	stalled := time.Now()
	consols := ls.Stats().Consolidations
	created := ls.Stats().Created
	var released time.Duration
	for time.Since(stalled) < 60*time.Second { // the leader keeps going
		apply(t, leader.r, "INSERT INTO t(v) VALUES(randomblob(3000))")
		if released == 0 && ls.Stats().LeasesHeld == 0 {
			released = time.Since(stalled)
		}
		if released > 0 && ls.Stats().Created >= created+3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if released == 0 {
		t.Fatal("lease not revoked while the reader is stalled")
	}
	t.Logf("lease released %v after the stall began; %d snapshots meanwhile", released.Round(10*time.Millisecond),
		ls.Stats().Created-created)
	if !waitFor(30*time.Second, func() bool { return ls.Stats().Consolidations > consols }) {
		t.Fatal("consolidation did not run after the revocation")
	}
	close(resume)
	want := leader.r.AppliedIndex()
	if !waitFor(60*time.Second, func() bool { return nodes[2].r.AppliedIndex() >= want }) {
		t.Fatalf("node 3 at %d, leader at %d", nodes[2].r.AppliedIndex(), want)
	}
	_, s1, _ := leader.fsm.db.Checksum(context.Background())
	waitFor(30*time.Second, func() bool {
		_, s3, _ := nodes[2].fsm.db.Checksum(context.Background())
		return s3 == s1
	})
	if _, s3, _ := nodes[2].fsm.db.Checksum(context.Background()); s3 != s1 {
		t.Fatal("node 3 differs from the leader")
	}
	if st := ls.Stats(); st.LastError != "" {
		t.Fatalf("leader snapshot error: %s", st.LastError)
	}
}
