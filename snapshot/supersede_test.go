package snapshot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// buildChain takes a full snapshot and n incrementals, each after a few
// writes, and returns them oldest first.
func (e *env) buildChain(n int) []Info {
	e.t.Helper()
	e.write(50, 500)
	out := []Info{e.mustSnapshot(false)}
	for i := 0; i < n; i++ {
		e.write(5, 500)
		out = append(out, e.mustSnapshot(false))
	}
	return out
}

// checkOpened reads a stream Open returned and checks it against its meta:
// the announced size, and the content of the database at meta.Index.
func (e *env) checkOpened(meta *raft.SnapshotMeta, rc io.ReadCloser, wantID string) {
	e.t.Helper()
	if meta.ID != wantID {
		e.t.Fatalf("opened %s, want %s", meta.ID, wantID)
	}
	in, err := e.store.Info(meta.ID)
	if err != nil || in.Index != meta.Index || in.Term != meta.Term {
		e.t.Fatalf("meta %s at %d/%d does not match the store's %+v (%v)", meta.ID, meta.Index, meta.Term, in, err)
	}
	counted := &countingReader{r: rc}
	sum := checksumOfStream(e.t, struct {
		io.Reader
		io.Closer
	}{counted, rc}, e.dir)
	if counted.n != meta.Size {
		e.t.Fatalf("stream of %s: %d bytes, meta says %d", meta.ID, counted.n, meta.Size)
	}
	if want := e.sums[meta.Index]; sum != want {
		e.t.Fatalf("stream of %s restores to %s, want the database at index %d (%s)", meta.ID, sum, meta.Index, want)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestOpenAfterConsolidationBetweenListAndOpen follows Raft's leader, which
// lists the snapshots and then opens the newest: a consolidation that runs
// in between (triggered here by the store's test hook once Open has
// resolved the id, before it takes its lease) must not make Open fail,
// whether it merged the listed snapshot away or rewrote it as full.
func TestOpenAfterConsolidationBetweenListAndOpen(t *testing.T) {
	var armed atomic.Bool
	var e *env
	hook := func(step string) error {
		if step == "open.planned" && armed.CompareAndSwap(true, false) {
			if err := e.store.Consolidate(context.Background()); err != nil {
				return err
			}
		}
		return nil
	}
	e = newEnv(t, Options{ConsolidateAfter: -1, hook: hook})

	// The listed head is rewritten as full under Open: same snapshot.
	e.buildChain(3)
	listed, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	meta, rc, err := e.store.Open(listed[0].ID)
	if err != nil {
		t.Fatalf("open of the listed head after a consolidation: %v", err)
	}
	e.checkOpened(meta, rc, listed[0].ID)
	if e.store.Stats().Consolidations != 1 {
		t.Fatal("the hook did not consolidate")
	}

	// A new snapshot arrives after List, and the consolidation it triggers
	// merges the listed snapshot away: Open streams the newest.
	chain := e.buildChain(2)
	listed, _ = e.store.List()
	e.write(5, 500)
	newest := e.mustSnapshot(false)
	armed.Store(true)
	meta, rc, err = e.store.Open(listed[0].ID)
	if err != nil {
		t.Fatalf("open of a snapshot merged away: %v", err)
	}
	e.checkOpened(meta, rc, newest.ID)
	if _, err := e.store.Info(chain[len(chain)-1].ID); err == nil {
		t.Fatal("the listed snapshot was not merged away")
	}
	if _, _, err := e.store.Open("1-1-1"); err == nil {
		t.Fatal("open of an id the store never held succeeded")
	}
	if st := e.store.Stats(); st.LastError != "" || st.LeasesHeld != 0 {
		t.Fatalf("after the streams: %+v", st)
	}
}

// TestOpenWaitingBehindConsolidationOfItsSnapshot is the seed scenario's
// case: a stream holds the chain, a consolidation waits for it, and a
// second Open of a snapshot the consolidation merges away waits behind the
// consolidation (writer preference). When the first stream ends, the
// consolidation runs and the waiting Open streams the newest snapshot
// instead of failing with "not found".
func TestOpenWaitingBehindConsolidationOfItsSnapshot(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.buildChain(3)
	listed, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	e.write(5, 500)
	newest := e.mustSnapshot(false)
	_, first, err := e.store.Open(newest.ID)
	if err != nil {
		t.Fatal(err)
	}
	waits := e.store.Stats().LeaseWaits
	consolidated := done(func() error { return e.store.Consolidate(context.Background()) })
	if !waitFor(30*time.Second, func() bool { return e.store.Stats().LeaseWaits > waits }) {
		t.Fatal("consolidation did not wait for the stream's lease")
	}
	type opened struct {
		meta *raft.SnapshotMeta
		rc   io.ReadCloser
		err  error
	}
	second := make(chan opened, 1)
	go func() {
		m, rc, err := e.store.Open(listed[0].ID)
		second <- opened{m, rc, err}
	}()
	if !waitFor(30*time.Second, func() bool { return e.store.Stats().LeaseWaits > waits+1 }) {
		t.Fatal("the second Open did not wait behind the consolidation")
	}
	first.Close()
	if err := <-consolidated; err != nil {
		t.Fatal(err)
	}
	var o opened
	select {
	case o = <-second:
	case <-time.After(60 * time.Second):
		t.Fatal("the second Open never returned")
	}
	if o.err != nil {
		t.Fatalf("open of a snapshot merged away while waiting: %v", o.err)
	}
	e.checkOpened(o.meta, o.rc, newest.ID)
	if st := e.store.Stats(); st.LastError != "" || st.Consolidations != 1 {
		t.Fatalf("after the streams: %+v", st)
	}
}

// receive sends snapshot id of leader into a new sink of e's store, as
// Raft's follower does, and returns the sink's id.
func (e *env) receive(leader *env, id string) string {
	e.t.Helper()
	meta, rc, err := leader.store.Open(id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	sink, err := e.store.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.Copy(sink, rc); err != nil {
		e.t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		e.t.Fatal(err)
	}
	return sink.ID()
}

// install restores the received snapshot id into e's database, as the
// FSM's Restore does.
func (e *env) install(id string) {
	e.t.Helper()
	meta, rc, err := e.store.Open(id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Install(e.db, rc); err != nil {
		e.t.Fatal(err)
	}
	e.index = meta.Index
}

// TestInstallBetweenCaptureAndPersist follows Raft's follower: its
// snapshot goroutine captures (FSM.Snapshot), and before it persists, the
// main loop receives a snapshot from the leader and the FSM installs it.
// Whether the capture was incremental or full, and whether Persist runs
// after the snapshot was received or only after it was installed, the
// capture is skipped: Persist fails with ErrSuperseded (so that Raft does
// not record the older index), nothing is stored, no error is recorded, the
// received snapshot stays the head, and the next snapshot is full and
// restores to the live database.
func TestInstallBetweenCaptureAndPersist(t *testing.T) {
	for _, c := range []struct {
		name          string
		full          bool
		beforeInstall bool
	}{
		{"incremental/after-install", false, false},
		{"incremental/after-receive", false, true},
		{"full/after-install", true, false},
		{"full/after-receive", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			leader := newEnv(t, Options{ConsolidateAfter: -1})
			leader.write(200, 500)
			head := leader.buildChain(2)[2]
			follower := newEnv(t, Options{ConsolidateAfter: -1})
			follower.buildChain(1)
			follower.write(5, 500)
			f, err := follower.store.Capture(follower.db, c.full)
			if err != nil {
				t.Fatal(err)
			}
			received := follower.receive(leader, head.ID)
			if !c.beforeInstall {
				follower.install(received)
			}
			sink, err := follower.store.Create(raft.SnapshotVersionMax, follower.index, 1, raft.Configuration{}, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = f.Persist(sink)
			if !errors.Is(err, ErrSuperseded) {
				t.Fatalf("persist of a superseded capture: %v", err)
			}
			sink.Cancel() // as Raft does after a failed Persist
			f.Release()
			if c.beforeInstall {
				follower.install(received)
			}
			st := follower.store.Stats()
			if st.LastError != "" || st.Superseded != 1 || len(st.Snapshots) != 1 || st.Snapshots[0].ID != received {
				t.Fatalf("after the skipped persist: %+v", st)
			}
			if left := tmpFiles(t, follower.store); len(left) != 0 {
				t.Fatalf("left in tmp/: %v", left)
			}
			if follower.checksum() != leader.sums[head.Index] {
				t.Fatal("follower differs from the installed snapshot")
			}
			follower.write(5, 500)
			next := follower.mustSnapshot(false)
			if next.Kind != KindFull || follower.restoredChecksum(next.ID) != follower.checksum() {
				t.Fatalf("snapshot after the install: %+v", next)
			}
			follower.write(5, 500)
			if in := follower.mustSnapshot(false); in.Kind != KindIncremental {
				t.Fatalf("chain did not resume: %+v", in)
			}
			if st := follower.store.Stats(); st.LastError != "" {
				t.Fatalf("last error: %q", st.LastError)
			}
		})
	}
}

// treeOf lists every path under dir, relative to it.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func withoutSnapshotFiles(paths []string) []string {
	var out []string
	for _, p := range paths {
		if !strings.HasPrefix(p, "snapshots/snapshots/") {
			out = append(out, p)
		}
	}
	return out
}

// TestBackupLeavesNothingBehind backs up through the store (as the node's
// Backup does) and lists the whole directory afterwards: the backup is
// the live database at the index it reports, and neither the store nor the
// database's directory keeps anything of it, whether send succeeds or
// fails. On StrictFS, and under wine (scripts/test-windows.sh), a file
// still open at removal would fail, as on Windows.
func TestBackupLeavesNothingBehind(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.buildChain(2)
	before := withoutSnapshotFiles(treeOf(t, e.dir))
	out := filepath.Join(tempDir(t), "backup.db")
	e.write(5, 500) // some pages in the WAL
	want := e.checksum()
	for _, failSend := range []bool{false, true} {
		err := e.store.BackupLive(context.Background(), e.db, func(r io.Reader, pos sqlitedb.Position, _ int64) error {
			if pos.Index != e.index {
				t.Errorf("backup at index %d reports %d", e.index, pos.Index)
			}
			if failSend {
				return errors.New("client went away")
			}
			return copyToFile(out, r)
		})
		if failSend != (err != nil) {
			t.Fatalf("backup (send fails: %v): %v", failSend, err)
		}
		if after := withoutSnapshotFiles(treeOf(t, e.dir)); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatalf("backup left files behind:\nbefore %v\nafter  %v", before, after)
		}
		if open := e.fs.OpenHandles(); len(open) != 0 {
			t.Fatalf("open handles after the backup: %v", open)
		}
	}
	if got := checksumOfFile(t, out); got != want {
		t.Fatalf("backup holds %s, want the database at index %d (%s)", got, e.index, want)
	}
}

func copyToFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
