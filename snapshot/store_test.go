package snapshot

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	_ "github.com/mattn/go-sqlite3"
)

func TestFullSnapshotRoundTrip(t *testing.T) {
	e := newEnv(t, Options{})
	e.write(100, 1000)
	in := e.mustSnapshot(false)
	if in.Kind != KindFull {
		t.Fatalf("first snapshot is %v", in.Kind)
	}
	if got, want := e.restoredChecksum(in.ID), e.sums[in.Index]; got != want {
		t.Fatalf("restored checksum %s, want %s", got, want)
	}
	metas, err := e.store.List()
	if err != nil || len(metas) != 1 || metas[0].ID != in.ID || metas[0].Index != in.Index {
		t.Fatalf("List: %v %v", metas, err)
	}
	_, rc, err := e.store.Open(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, rc)
	rc.Close()
	if n != metas[0].Size {
		t.Fatalf("stream of %d bytes, meta says %d", n, metas[0].Size)
	}
	if l, ok := e.store.Latest(); !ok || l.ID != in.ID || l.Size < 100*1000 {
		t.Fatalf("Latest %+v %v", l, ok)
	}
}

func TestIncrementalChain(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(500, 1000)
	full := e.mustSnapshot(false)
	var ids []string
	for i := 0; i < 4; i++ {
		e.write(5, 1000)
		in := e.mustSnapshot(false)
		if in.Kind != KindIncremental {
			t.Fatalf("snapshot %d is %v", i, in.Kind)
		}
		// Cost is the written pages, not the 500 KB database.
		if in.Size > full.Size/4 {
			t.Fatalf("incremental of %d bytes for a %d byte database", in.Size, full.Size)
		}
		ids = append(ids, in.ID)
	}
	st := e.store.Stats()
	if len(st.Snapshots) != 5 || st.Snapshots[0].ID != ids[3] || st.LastSnapshotIndex != e.index {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range append([]string{full.ID}, ids...) {
		in, _ := e.store.Info(id)
		if got := e.restoredChecksum(id); got != e.sums[in.Index] {
			t.Fatalf("snapshot %s restores to %s, want %s", id, got, e.sums[in.Index])
		}
	}
	if e.checksum() != e.sums[e.index] {
		t.Fatal("live database changed")
	}
}

func TestConsolidation(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(200, 1000)
	e.mustSnapshot(false)
	var last Info
	for i := 0; i < 4; i++ {
		e.write(20, 1000)
		last = e.mustSnapshot(false)
	}
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.store.Stats()
	if len(st.Snapshots) != 1 || st.Snapshots[0].ID != last.ID || st.Snapshots[0].Kind != KindFull {
		t.Fatalf("after consolidation: %+v", st.Snapshots)
	}
	if got := e.restoredChecksum(last.ID); got != e.sums[last.Index] {
		t.Fatalf("consolidated snapshot restores to %s, want %s", got, e.sums[last.Index])
	}
	// The chain continues on the consolidated snapshot.
	e.write(3, 100)
	next := e.mustSnapshot(false)
	if next.Kind != KindIncremental || e.restoredChecksum(next.ID) != e.checksum() {
		t.Fatalf("snapshot after consolidation: %+v", next)
	}
	entries, _ := os.ReadDir(filepath.Join(e.store.Dir(), "snapshots"))
	if len(entries) != 2 {
		t.Fatalf("%d snapshot directories on disk", len(entries))
	}
}

// TestConsolidationWaitsForLeaseWhileSnapshotsContinue is the no-cascade
// rule: a stream holds its snapshot's files; consolidation waits for it,
// but new incremental snapshots keep succeeding meanwhile.
func TestConsolidationWaitsForLeaseWhileSnapshotsContinue(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(200, 1000)
	e.mustSnapshot(false)
	var streamed Info
	for i := 0; i < 3; i++ {
		e.write(10, 1000)
		streamed = e.mustSnapshot(false)
	}
	_, rc, err := e.store.Open(streamed.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := io.CopyN(&got, rc, 1000); err != nil {
		t.Fatal(err)
	}
	consolidated := done(func() error { return e.store.Consolidate(context.Background()) })
	if !waitFor(30*time.Second, func() bool { return e.store.Stats().LeaseWaits > 0 }) {
		t.Fatal("consolidation did not wait for the lease")
	}
	for i := 0; i < 5; i++ {
		e.write(10, 1000)
		if in := e.mustSnapshot(false); in.Kind != KindIncremental {
			t.Fatalf("snapshot during stream is %v", in.Kind)
		}
	}
	assertBlocked(t, consolidated, 100*time.Millisecond)
	if st := e.store.Stats(); st.LeasesHeld != 1 || st.LastError != "" {
		t.Fatalf("stats during stream: %+v", st)
	}
	if _, err := io.Copy(&got, rc); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	if st := e.store.Stats(); st.Consolidations != 0 {
		t.Fatal("consolidated during the stream")
	}
	rc.Close()
	assertDoneWithin(t, consolidated, time.Second)
	if st := e.store.Stats(); st.Consolidations != 1 || st.LastConsolidation.Before(closed) || st.Created != 9 {
		t.Fatalf("stats after consolidation: %+v", st)
	}
	t.Logf("consolidation finished %v after the stream closed", time.Since(closed))
	if sum := checksumOfStream(t, io.NopCloser(&got), e.dir); sum != e.sums[streamed.Index] {
		t.Fatal("the stream read during consolidation is wrong")
	}
	if sum := e.restoredChecksum(e.store.Stats().Snapshots[0].ID); sum != e.checksum() {
		t.Fatal("latest snapshot differs from the live database")
	}
}

func TestAutomaticConsolidationAndPrune(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: 3})
	e.mustSnapshot(false)
	for i := 0; i < 3; i++ {
		e.write(10, 100)
		e.mustSnapshot(false)
	}
	if !waitFor(30*time.Second, func() bool { return len(e.store.Stats().Snapshots) == 1 }) {
		t.Fatalf("not consolidated: %+v", e.store.Stats())
	}
	e.write(10, 100)
	e.mustSnapshot(true)
	if !waitFor(30*time.Second, func() bool { return len(e.store.Stats().Snapshots) == 1 }) {
		t.Fatalf("old chain not pruned: %+v", e.store.Stats())
	}
	if e.restoredChecksum(e.store.Stats().Snapshots[0].ID) != e.checksum() {
		t.Fatal("latest snapshot differs from the live database")
	}
}

func corruptFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChecksumMismatchRefused(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(50, 1000)
	full := e.mustSnapshot(false)
	e.write(5, 1000)
	inc := e.mustSnapshot(false)
	corruptFile(t, filepath.Join(e.store.Dir(), "snapshots", full.ID, "db"))
	before := e.checksum()
	// Open refuses when it consolidates an image to send (it reads every
	// file); otherwise the stream fails before its last byte.
	_, rc, err := e.store.Open(inc.ID)
	if err == nil {
		err = e.store.Install(e.db, rc)
	}
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("install of a corrupt snapshot: %v", err)
	}
	if e.checksum() != before {
		t.Fatal("live database changed by a refused install")
	}
	e.write(1, 10) // still usable
	if st := e.store.Stats(); !strings.Contains(st.LastError, "checksum") {
		t.Fatalf("last error %q", st.LastError)
	}
	// The sink on a receiving node refuses a stream corrupted in transit.
	e2 := newEnv(t, Options{})
	_, rc, err = e2.store.Open(e2.mustSnapshot(false).ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	data[len(data)-10] ^= 1
	sink, _ := e.store.Create(1, 99, 2, raft.Configuration{}, 0, nil)
	sink.Write(data)
	if err := sink.Close(); !errors.Is(err, ErrChecksum) {
		t.Fatalf("sink accepted a corrupt stream: %v", err)
	}
	if _, err := e.store.Info(sink.ID()); err == nil {
		t.Fatal("corrupt snapshot listed")
	}
}

// holdReader keeps a read transaction open on the live database, which
// stops a checkpoint from completing.
func holdReader(t *testing.T, path string) func() {
	t.Helper()
	c, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return func() { tx.Rollback(); c.Close() }
}

func TestIncompleteCheckpointForcesFull(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1, CheckpointBusyTimeout: 50 * time.Millisecond})
	e.mustSnapshot(false)
	e.write(5, 100)
	release := holdReader(t, e.db.Path())
	e.write(5, 100)
	if in := e.mustSnapshot(false); in.Kind != KindIncremental {
		t.Fatalf("got %v", in.Kind)
	}
	if st := e.store.Stats(); st.NextFull == "" {
		t.Fatal("incomplete checkpoint did not force a full snapshot")
	}
	e.write(5, 100)
	// Still blocked: the full snapshot carries the WAL it could not fold in.
	in := e.mustSnapshot(false)
	release()
	if in.Kind != KindFull || e.restoredChecksum(in.ID) != e.sums[in.Index] {
		t.Fatalf("snapshot after incomplete checkpoint: %+v", in)
	}
	e.write(5, 100)
	full := e.mustSnapshot(false)
	e.write(5, 100)
	if in := e.mustSnapshot(false); full.Kind != KindFull || in.Kind != KindIncremental {
		t.Fatalf("chain did not resume: %v then %v", full.Kind, in.Kind)
	}
	if e.restoredChecksum(e.store.Stats().Snapshots[0].ID) != e.checksum() {
		t.Fatal("latest snapshot differs from the live database")
	}
}

func TestFailedOrAbandonedPersistForcesFull(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.mustSnapshot(false)
	e.write(5, 100)
	f, err := e.store.Capture(e.db, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Release() // Persist never ran
	e.write(5, 100)
	if in := e.mustSnapshot(false); in.Kind != KindFull {
		t.Fatalf("after abandoned persist: %v", in.Kind)
	}
	e.write(5, 100)
	f, _ = e.store.Capture(e.db, false)
	sink, _ := e.store.Create(1, e.index, 1, raft.Configuration{}, 0, nil)
	sink.Cancel()
	if err := f.Persist(sink); err == nil {
		t.Fatal("persist into a cancelled sink succeeded")
	}
	f.Release()
	f, err = e.store.Capture(e.db, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Release()
	if st := e.store.Stats(); !strings.Contains(st.NextFull, "persist") {
		t.Fatalf("still pending full: %q", st.NextFull)
	}
}

func TestCaptureRefusesOverlap(t *testing.T) {
	e := newEnv(t, Options{})
	f, err := e.store.Capture(e.db, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Capture(e.db, false); err == nil {
		t.Fatal("second capture while the first is pending")
	}
	f.Release()
}

// TestInstallFromAnotherNode follows Raft's follower path: the leader's
// stream goes into a sink of the follower's store, which then opens it and
// restores it into the follower's database.
func TestInstallFromAnotherNode(t *testing.T) {
	leader := newEnv(t, Options{ConsolidateAfter: -1})
	leader.write(100, 500)
	leader.mustSnapshot(false)
	leader.write(10, 500)
	head := leader.mustSnapshot(false)
	var received atomic.Int64
	follower := newEnv(t, Options{OnReceive: func(n int) { received.Add(int64(n)) }})
	meta, rc, err := leader.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := follower.store.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(sink, rc)
	rc.Close()
	if err != nil || n != meta.Size {
		t.Fatalf("copied %d of %d: %v", n, meta.Size, err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if received.Load() != meta.Size {
		t.Fatalf("OnReceive saw %d bytes of %d", received.Load(), meta.Size)
	}
	_, rc, err = follower.store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.store.Install(follower.db, rc); err != nil {
		t.Fatal(err)
	}
	if follower.checksum() != leader.sums[head.Index] {
		t.Fatal("follower differs from the leader's snapshot")
	}
	follower.index = head.Index
	follower.write(1, 10)
	if in := follower.mustSnapshot(false); in.Kind != KindFull {
		t.Fatalf("first snapshot after install is %v", in.Kind)
	}
}

// cutReader ends with an error after n bytes, like a broken connection.
type cutReader struct {
	r io.Reader
	n int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func TestCutInstallLeavesOldDatabase(t *testing.T) {
	leader := newEnv(t, Options{ConsolidateAfter: -1})
	leader.write(100, 1000)
	leader.mustSnapshot(false)
	leader.write(50, 1000)
	head := leader.mustSnapshot(false)
	follower := newEnv(t, Options{})
	follower.write(3, 10)
	before := follower.checksum()
	meta, abandoned, err := leader.store.Open(head.ID) // a stream never read
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end: left to the idle timeout, its lease's revocation
	// would log after the test, which fails the package under a slow -race.
	t.Cleanup(func() { abandoned.Close() })
	for _, cut := range []int64{5, 100, meta.Size / 2, meta.Size - 1} {
		_, rc, err := leader.store.Open(head.ID)
		if err != nil {
			t.Fatal(err)
		}
		err = follower.store.Install(follower.db, struct {
			io.Reader
			io.Closer
		}{&cutReader{rc, cut}, rc})
		if err == nil {
			t.Fatalf("install cut at %d succeeded", cut)
		}
		if follower.checksum() != before {
			t.Fatalf("cut at %d changed the database", cut)
		}
	}
	follower.write(1, 10)
	entries, _ := os.ReadDir(follower.dir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "restore-") {
			t.Fatalf("left behind %s", en.Name())
		}
	}
}

func TestStreamRevokedWhenIdle(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1, LeaseIdleTimeout: 200 * time.Millisecond})
	e.write(100, 1000)
	e.mustSnapshot(false)
	e.write(10, 1000)
	in := e.mustSnapshot(false)
	_, rc, err := e.store.Open(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, rc, 1000); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("consolidation waited %v for an idle reader", d)
	}
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrLeaseRevoked) {
		t.Fatalf("read after revocation: %v", err)
	}
	rc.Close()
}

func TestSnapshotWithoutWrites(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.mustSnapshot(false)
	e.index++ // an entry that did not touch the database (a configuration change)
	in := e.mustSnapshot(false)
	if in.Kind != KindIncremental || in.Size != 0 {
		t.Fatalf("snapshot with no writes: %+v", in)
	}
	if e.restoredChecksum(in.ID) != e.checksum() {
		t.Fatal("restore differs")
	}
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSinkCloseTwice follows Raft, which closes the sink again after
// Persist closed it, and may Cancel after a failed Persist.
func TestSinkCloseTwice(t *testing.T) {
	e := newEnv(t, Options{})
	f, err := e.store.Capture(e.db, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	sink, _ := e.store.Create(1, e.index, 1, raft.Configuration{}, 0, nil)
	if err := f.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := sink.Cancel(); err != nil {
		t.Fatalf("cancel after close: %v", err)
	}
	if _, err := e.store.Info(sink.ID()); err != nil {
		t.Fatalf("snapshot gone after cancel-after-close: %v", err)
	}
	cancelled, _ := e.store.Create(1, e.index, 1, raft.Configuration{}, 0, nil)
	cancelled.Cancel()
	if err := cancelled.Close(); err == nil {
		t.Fatal("close after cancel succeeded")
	}
}

// TestInstallDuringPendingFullCapture: Raft's follower can restore while a
// full capture awaits Persist (its snapshot goroutine waits on the main
// loop, which waits on the restore). Install must not wait for Persist, and
// Persist must then refuse to copy the replaced file.
func TestInstallDuringPendingFullCapture(t *testing.T) {
	leader := newEnv(t, Options{})
	leader.write(20, 100)
	in := leader.mustSnapshot(false)
	follower := newEnv(t, Options{})
	follower.write(5, 100)
	f, err := follower.store.Capture(follower.db, true)
	if err != nil {
		t.Fatal(err)
	}
	_, rc, err := leader.store.Open(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	installed := done(func() error { return follower.store.Install(follower.db, rc) })
	assertDoneWithin(t, installed, 2*time.Second)
	sink, _ := follower.store.Create(1, follower.index, 1, raft.Configuration{}, 0, nil)
	if err := f.Persist(sink); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("persist of a capture of a replaced database: %v", err)
	}
	f.Release()
	if st := follower.store.Stats(); st.LastError != "" {
		t.Fatalf("a superseded capture recorded an error: %q", st.LastError)
	}
	if follower.checksum() != leader.sums[in.Index] {
		t.Fatal("follower differs from the installed snapshot")
	}
	follower.index = in.Index
	follower.write(1, 10)
	if in := follower.mustSnapshot(false); in.Kind != KindFull || follower.restoredChecksum(in.ID) != follower.checksum() {
		t.Fatalf("snapshot after install: %+v", in)
	}
}

func TestSinkIDsAreUnique(t *testing.T) {
	e := newEnv(t, Options{})
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		sink, err := e.store.Create(1, 7, 1, raft.Configuration{}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[sink.ID()] {
			t.Fatalf("duplicate id %s", sink.ID())
		}
		seen[sink.ID()] = true
		defer sink.Cancel()
	}
}
