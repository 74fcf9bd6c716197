package snapshot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const leaderAddr = "leader:7002"

// pullPair is a leader and a follower whose stores install by pull, both
// on StrictFS. The follower's Fetch calls the leader's ServePull in this
// process (raftnode carries it over gRPC), through wrap when a test sets
// it, to tamper with the pull or stall it.
type pullPair struct {
	t        *testing.T
	leader   *env
	follower *env
	wrap     func(ctx context.Context, p *Pull) *Pull
	fetches  atomic.Int64
}

func newPullPair(t *testing.T, leaderOpts, followerOpts Options) *pullPair {
	pp := &pullPair{t: t}
	leaderOpts.Pull = PullOptions{Address: leaderAddr}
	if leaderOpts.ConsolidateAfter == 0 {
		leaderOpts.ConsolidateAfter = -1
	}
	pp.leader = newEnv(t, leaderOpts)
	followerOpts.Pull = PullOptions{Address: "follower:7002", Fetch: pp.fetch}
	pp.follower = newEnv(t, followerOpts)
	return pp
}

func (pp *pullPair) fetch(ctx context.Context, m Manifest) (*Pull, error) {
	pp.fetches.Add(1)
	if m.Address != leaderAddr {
		return nil, errors.New("unknown address " + m.Address)
	}
	p, err := pp.leader.store.ServePull(ctx, m.Token, m.ID)
	if err != nil {
		return nil, err
	}
	if pp.wrap != nil {
		p = pp.wrap(ctx, p)
	}
	return p, nil
}

// receive does Raft's part of an install up to the follower's answer: the
// leader opens id, the follower's sink takes the stream (a manifest) and
// closes (which pulls); the leader then closes its reader. It returns the
// sink's id and Close's error.
func (pp *pullPair) receive(id string) (string, error) {
	pp.t.Helper()
	meta, rc, err := pp.leader.store.Open(id)
	if err != nil {
		pp.t.Fatal(err)
	}
	defer rc.Close()
	sink, err := pp.follower.store.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, nil)
	if err != nil {
		pp.t.Fatal(err)
	}
	n, err := io.Copy(sink, rc)
	if err != nil || n != meta.Size {
		sink.Cancel()
		pp.t.Fatalf("copied %d of %d manifest bytes: %v", n, meta.Size, err)
	}
	return sink.ID(), sink.Close()
}

// install is receive, then the follower's FSM.Restore: Raft opens the
// received snapshot from the follower's store and hands it to Install.
func (pp *pullPair) install(id string) string {
	pp.t.Helper()
	got, err := pp.receive(id)
	if err != nil {
		pp.t.Fatal(err)
	}
	if err := pp.restore(got); err != nil {
		pp.t.Fatal(err)
	}
	return got
}

func (pp *pullPair) restore(id string) error {
	_, rc, err := pp.follower.store.Open(id)
	if err != nil {
		return err
	}
	return pp.follower.store.Install(pp.follower.db, rc)
}

// inlineChecksum restores snapshot id of e's store through a data stream
// (a store that installs by pull hands Raft a manifest from Open).
func inlineChecksum(t *testing.T, e *env, id string) string {
	t.Helper()
	_, rc, err := e.store.OpenContext(context.Background(), "test", id)
	if err != nil {
		t.Fatal(err)
	}
	return checksumOfStream(t, rc, e.dir)
}

// restoreFiles lists the files a restore or install left next to e's live
// database.
func restoreFiles(t *testing.T, e *env) []string {
	t.Helper()
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), RestorePrefix) {
			out = append(out, en.Name())
		}
	}
	return out
}

// leaderChain gives pp's leader a chain of the shape kind names: "full"
// (one file), "chain" (a full snapshot and small incrementals, streamed as
// they are) or "image" (incrementals larger than the database: streamed as
// an image consolidated for the pull).
func (pp *pullPair) leaderChain(kind string) Info {
	e := pp.leader
	e.fill(1000)
	head := e.mustSnapshot(true)
	switch kind {
	case "chain":
		for i := 0; i < 2; i++ {
			e.updateSameRows(20, 20)
			head = e.mustSnapshot(false)
		}
	case "image":
		for i := 0; i < 4; i++ {
			e.updateSameRows(200, 600)
			head = e.mustSnapshot(false)
		}
	}
	return head
}

// TestPullInstall: an install by pull, for each shape of the leader's
// chain. The follower's database becomes the leader's snapshot; the
// received snapshot's files were moved, not copied, into the live
// database (nothing left next to it, the snapshot InLiveDB, refused by
// Open); the leader holds no lease or offer and left no image; the
// follower's next snapshot is full and replaces the moved one.
func TestPullInstall(t *testing.T) {
	for _, kind := range []string{"full", "chain", "image"} {
		t.Run(kind, func(t *testing.T) {
			var received atomic.Int64
			pp := newPullPair(t, Options{}, Options{OnReceive: func(n int) { received.Add(int64(n)) }})
			head := pp.leaderChain(kind)
			listed := listedSize(t, pp.leader.store, head.ID)
			id := pp.install(head.ID)
			if pp.follower.checksum() != pp.leader.sums[head.Index] {
				t.Fatal("follower differs from the leader's snapshot")
			}
			in, err := pp.follower.store.Info(id)
			if err != nil || !in.InLiveDB || in.Size != 0 {
				t.Fatalf("received snapshot after the install: %+v, %v", in, err)
			}
			if _, _, err := pp.follower.store.Open(id); !errors.Is(err, ErrInLiveDB) {
				t.Fatalf("Open of the moved snapshot: %v", err)
			}
			if left := restoreFiles(t, pp.follower); len(left) != 0 {
				t.Fatalf("left next to the live database: %v", left)
			}
			if st := pp.leader.store.Stats(); st.LeasesHeld != 0 || st.Offers != 0 || st.LastError != "" {
				t.Fatalf("leader after the install: %+v", st)
			}
			if left := tmpFiles(t, pp.leader.store); len(left) != 0 {
				t.Fatalf("left in the leader's tmp/: %v", left)
			}
			dbSize := pp.leader.liveDBSize()
			t.Logf("manifest %d bytes; received %d bytes for a %d-byte database", listed, received.Load(), dbSize)
			if r := received.Load(); r < dbSize || r > dbSize+dbSize/10+listed {
				t.Fatalf("received %d bytes for a %d-byte database", r, dbSize)
			}
			pp.follower.index = head.Index
			pp.follower.write(1, 10)
			if in := pp.follower.mustSnapshot(false); in.Kind != KindFull {
				t.Fatalf("first snapshot after the install is %v", in.Kind)
			}
			if !waitFor(10*time.Second, func() bool { _, err := pp.follower.store.Info(id); return err != nil }) {
				t.Fatal("the moved snapshot was not pruned after a full snapshot")
			}
		})
	}
}

// TestPullChecksumMismatchRefused: a byte changed in transit makes the
// follower's sink fail with ErrChecksum before anything becomes visible:
// no snapshot, nothing in tmp/, the live database as it was; the leader's
// lease is gone, so a consolidation renaming the pulled files proceeds.
func TestPullChecksumMismatchRefused(t *testing.T) {
	pp := newPullPair(t, Options{}, Options{})
	head := pp.leaderChain("chain")
	pp.wrap = func(_ context.Context, p *Pull) *Pull {
		p.Body = &flipReader{ReadCloser: p.Body, at: 5000}
		return p
	}
	before, beforeStats := pp.follower.checksum(), pp.follower.store.Stats()
	_, err := pp.receive(head.ID)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt pull: %v, want %v", err, ErrChecksum)
	}
	if st := pp.follower.store.Stats(); len(st.Snapshots) != len(beforeStats.Snapshots) {
		t.Fatalf("a refused pull left snapshots: %+v", st.Snapshots)
	}
	if left := tmpFiles(t, pp.follower.store); len(left) != 0 {
		t.Fatalf("left in the follower's tmp/: %v", left)
	}
	if pp.follower.checksum() != before {
		t.Fatal("a refused pull changed the live database")
	}
	if st := pp.leader.store.Stats(); st.LeasesHeld != 0 || st.Offers != 0 {
		t.Fatalf("leader after a refused pull: %+v", st)
	}
	if err := pp.leader.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	pp.wrap = nil
	pp.install(head.ID)
	if pp.follower.checksum() != pp.leader.sums[head.Index] {
		t.Fatal("follower differs from the leader's snapshot")
	}
}

// flipReader changes the byte at offset at.
type flipReader struct {
	io.ReadCloser
	at, off int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

// stallReader passes the first n bytes, then blocks until release is
// closed or ctx ends, like a follower that stopped reading.
type stallReader struct {
	io.ReadCloser
	n       int64
	ctx     context.Context
	stalled chan struct{}
	release chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		select {
		case <-s.stalled:
		default:
			close(s.stalled)
		}
		select {
		case <-s.release:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
		return s.ReadCloser.Read(p)
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	n, err := s.ReadCloser.Read(p)
	s.n -= int64(n)
	return n, err
}

// TestPullLeaseEnds: the leader's lease on the pulled files (and so the
// wait of a consolidation that renames them, under StrictFS) ends when the
// pull completes, when the follower cancels it (its store closes, as when
// the node stops), when the leader's Raft call ends while the follower
// still pulls (the leader is gone for the follower), and when the follower
// stops reading for the idle timeout. Each time the follower's install
// fails cleanly and succeeds when retried.
func TestPullLeaseEnds(t *testing.T) {
	for _, end := range []string{"completed", "follower closed", "call ended", "idle"} {
		t.Run(end, func(t *testing.T) {
			pp := newPullPair(t, Options{LeaseIdleTimeout: 500 * time.Millisecond}, Options{})
			head := pp.leaderChain("chain")
			stall := &stallReader{n: 64 << 10, stalled: make(chan struct{}), release: make(chan struct{})}
			if end != "completed" {
				pp.wrap = func(ctx context.Context, p *Pull) *Pull {
					stall.ReadCloser, stall.ctx = p.Body, ctx
					p.Body = stall
					return p
				}
			}
			meta, rc, err := pp.leader.store.Open(head.ID)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := pp.follower.store.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(sink, rc); err != nil {
				t.Fatal(err)
			}
			closed := done(sink.Close)
			if end != "completed" {
				<-stall.stalled
				if pp.leader.store.Stats().LeasesHeld != 1 {
					t.Fatal("no lease held while the follower pulls")
				}
			}
			consolidated := done(func() error { return pp.leader.store.Consolidate(context.Background()) })
			switch end {
			case "completed":
				if err := <-closed; err != nil {
					t.Fatal(err)
				}
				closed = done(func() error { return nil })
			case "follower closed":
				assertBlocked(t, consolidated, 100*time.Millisecond)
				pp.follower.store.Close()
			case "call ended":
				assertBlocked(t, consolidated, 100*time.Millisecond)
				rc.Close()
			case "idle": // the follower holds on; the leader revokes the lease
			}
			assertDoneWithin(t, consolidated, 20*time.Second)
			if st := pp.leader.store.Stats(); st.LeasesHeld != 0 || st.Offers != 0 {
				t.Fatalf("leader after the pull ended: %+v", st)
			}
			close(stall.release)
			err = <-closed
			rc.Close()
			if end == "completed" {
				return
			}
			if err == nil {
				t.Fatal("the sink of an ended pull closed without error")
			}
			t.Logf("follower's sink: %v", err)
			if end == "follower closed" {
				pp.follower.openStore()
			}
			pp.wrap = nil
			pp.install(pp.leader.store.Stats().Snapshots[0].ID)
			if pp.follower.checksum() != pp.leader.sums[head.Index] {
				t.Fatal("follower differs from the leader's snapshot after the retry")
			}
		})
	}
}

// TestPullOfferIsSingleUse: a token serves one pull; an unknown token, or
// the right token for another snapshot, is refused.
func TestPullOfferIsSingleUse(t *testing.T) {
	pp := newPullPair(t, Options{}, Options{})
	head := pp.leaderChain("full")
	_, rc, err := pp.leader.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	magic, js, err := readFramed(rc)
	if err != nil || magic != pullMagic {
		t.Fatalf("manifest: %q %v", magic, err)
	}
	m := string(js)
	token := m[strings.Index(m, `"token":"`)+9:]
	token = token[:strings.Index(token, `"`)]
	if _, err := pp.leader.store.ServePull(context.Background(), "00"+token[2:], head.ID); !errors.Is(err, ErrOfferNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := pp.leader.store.ServePull(context.Background(), token, "1-2-3"); !errors.Is(err, ErrOfferNotFound) {
		t.Fatalf("token for another snapshot: %v", err)
	}
	p, err := pp.leader.store.ServePull(context.Background(), token, head.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Body.Close()
	if _, err := pp.leader.store.ServePull(context.Background(), token, head.ID); !errors.Is(err, ErrOfferNotFound) {
		t.Fatalf("second pull of one offer: %v", err)
	}
}

// TestFailedSwapPutsSnapshotBack: when the swap of the moved file fails
// (StrictFS refuses it while a handle holds the live file, as Windows
// would), the received snapshot gets its database back, checksummed anew
// when its WAL files were folded in, and still restores to the leader's
// content; the install succeeds once the handle is gone.
func TestFailedSwapPutsSnapshotBack(t *testing.T) {
	for _, kind := range []string{"full", "chain"} {
		t.Run(kind, func(t *testing.T) {
			pp := newPullPair(t, Options{}, Options{})
			head := pp.leaderChain(kind)
			id, err := pp.receive(head.ID)
			if err != nil {
				t.Fatal(err)
			}
			before := pp.follower.checksum()
			held, err := pp.follower.fs.Open(pp.follower.db.Path())
			if err != nil {
				t.Fatal(err)
			}
			if err := pp.restore(id); !errors.Is(err, ErrSharingViolation) {
				t.Fatalf("install over a held live file: %v, want a sharing violation", err)
			}
			held.Close()
			if pp.follower.checksum() != before {
				t.Fatal("a failed swap changed the live database")
			}
			if in, err := pp.follower.store.Info(id); err != nil || in.InLiveDB {
				t.Fatalf("received snapshot after a failed swap: %+v %v", in, err)
			}
			if got := inlineChecksum(t, pp.follower, id); got != pp.leader.sums[head.Index] {
				t.Fatal("the snapshot put back restores to other content")
			}
			if left := restoreFiles(t, pp.follower); len(left) != 0 {
				t.Fatalf("left next to the live database: %v", left)
			}
			if err := pp.restore(id); err != nil {
				t.Fatal(err)
			}
			if pp.follower.checksum() != pp.leader.sums[head.Index] {
				t.Fatal("follower differs from the leader's snapshot")
			}
		})
	}
}

// TestInterruptedMoveRecovered: a crash in the middle of moving a received
// snapshot into the live database is repaired when the store opens. Moved
// but not swapped: the file goes back into the snapshot. Swapped: the
// snapshot is recorded as in the live database.
func TestInterruptedMoveRecovered(t *testing.T) {
	for _, swapped := range []bool{false, true} {
		t.Run(map[bool]string{false: "moved", true: "swapped"}[swapped], func(t *testing.T) {
			pp := newPullPair(t, Options{}, Options{})
			head := pp.leaderChain("chain")
			id, err := pp.receive(head.ID)
			if err != nil {
				t.Fatal(err)
			}
			e, c := pp.follower, pp.follower.store.catalog
			m, _ := c.metaOf(id)
			m.AdoptPath = filepath.Join(e.dir, RestorePrefix+"1.db")
			if err := c.writeMeta(c.snapDir(id), &m); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(c.snapDir(id), "db")
			if swapped {
				err = os.Remove(db)
			} else {
				err = os.Rename(db, m.AdoptPath)
			}
			if err != nil {
				t.Fatal(err)
			}
			e.store.Close()
			e.openStore()
			in, err := e.store.Info(id)
			if err != nil || in.InLiveDB != swapped {
				t.Fatalf("after recovery: %+v %v", in, err)
			}
			if !swapped {
				if got := inlineChecksum(t, e, id); got != pp.leader.sums[head.Index] {
					t.Fatal("the snapshot moved back restores to other content")
				}
			}
			if err := RemoveRestoreLeftovers(nil, e.dir); err != nil {
				t.Fatal(err)
			}
			if left := restoreFiles(t, e); len(left) != 0 {
				t.Fatalf("left next to the live database: %v", left)
			}
		})
	}
}

// TestPullStoreStillStreamsInline: a store that offers pulls still
// receives a stream with the data in it (from a node that does not pull),
// and its OpenContext (backups) still streams data that Restore takes.
func TestPullStoreStillStreamsInline(t *testing.T) {
	pp := newPullPair(t, Options{}, Options{})
	inline := newEnv(t, Options{})
	inline.write(50, 500)
	head := inline.mustSnapshot(true)
	meta, rc, err := inline.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := pp.follower.store.Create(raft.SnapshotVersionMax, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(sink, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pp.restore(sink.ID()); err != nil {
		t.Fatal(err)
	}
	if pp.follower.checksum() != inline.sums[head.Index] || pp.fetches.Load() != 0 {
		t.Fatalf("inline install: checksum differs or %d pulls", pp.fetches.Load())
	}
	lh := pp.leaderChain("chain")
	if got := inlineChecksum(t, pp.leader, lh.ID); got != pp.leader.sums[lh.Index] {
		t.Fatal("OpenContext of a pulling store restores to other content")
	}
}
