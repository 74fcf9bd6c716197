package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// backupBytes backs snapshot id up into memory.
func (e *env) backupBytes(id string) ([]byte, *raft.SnapshotMeta) {
	e.t.Helper()
	var out bytes.Buffer
	var got *raft.SnapshotMeta
	err := e.store.Backup(context.Background(), id, func(r io.Reader, meta *raft.SnapshotMeta) error {
		got = meta
		_, err := io.Copy(&out, r)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if int64(out.Len()) != got.Size {
		e.t.Fatalf("backup of %d bytes announced as %d", out.Len(), got.Size)
	}
	return out.Bytes(), got
}

// restoredBytes is the file Restore builds from snapshot id's stream.
func (e *env) restoredBytes(id string) []byte {
	e.t.Helper()
	_, rc, err := e.store.Open(id)
	if err != nil {
		e.t.Fatal(err)
	}
	path, err := Restore(rc, tempDir(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// checkBackup backs up the head and checks the file: Restore's file byte
// for byte, intact, the database at the snapshot's index; nothing in tmp/,
// nothing open.
func (e *env) checkBackup(what string) {
	e.t.Helper()
	head, _ := e.store.Latest()
	got, meta := e.backupBytes(head.ID)
	if meta.ID != head.ID || meta.Index != head.Index {
		e.t.Fatalf("%s: backup of %s reports %s at %d", what, head.ID, meta.ID, meta.Index)
	}
	if want := e.restoredBytes(head.ID); !bytes.Equal(got, want) {
		e.t.Fatalf("%s: backup of %d bytes differs from the restored file of %d", what, len(got), len(want))
	}
	dir := tempDir(e.t)
	checkIntegrity(e.t.(*testing.T), got, dir)
	path := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if sum := checksumOfFile(e.t.(*testing.T), path); sum != e.sums[head.Index] {
		e.t.Fatalf("%s: backup holds %s, want the database at index %d (%s)", what, sum, head.Index, e.sums[head.Index])
	}
	e.checkNothingLeft(what)
}

// checkNothingLeft: the store's tmp/ is empty and no file is open.
func (e *env) checkNothingLeft(what string) {
	e.t.Helper()
	if left, _ := os.ReadDir(filepath.Join(e.dir, "snapshots", "tmp")); len(left) != 0 {
		e.t.Fatalf("%s: %d entries left in tmp/ (%s…)", what, len(left), left[0].Name())
	}
	if open := e.fs.OpenHandles(); len(open) != 0 {
		e.t.Fatalf("%s: open handles after the backup: %v", what, open)
	}
}

// TestBackupIsTheSnapshotsDatabase: a backup of a full snapshot alone, of
// a full snapshot and several incrementals, and after consolidation, is
// byte for byte the file Restore builds from the same snapshot, passes
// integrity_check, holds the database as it was at the snapshot's index,
// and leaves nothing in tmp/.
func TestBackupIsTheSnapshotsDatabase(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.fill(500)
	e.mustSnapshot(true)
	e.checkBackup("full snapshot")
	for i := 0; i < 4; i++ {
		e.updateSameRows(30, 40)
		e.write(20, 3000)
		e.mustSnapshot(false)
	}
	e.exec("DELETE FROM u WHERE id % 2 = 0")
	e.mustSnapshot(false)
	e.checkBackup("full snapshot and 5 incrementals")
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.store.Latest(); in.Kind != KindFull {
		t.Fatalf("after consolidation the head is %+v", in)
	}
	e.checkBackup("consolidated")
}

// startStalledBackup starts a backup of the head whose send reads one
// chunk and then waits for release before reading on; it returns once
// that chunk was read, with the channel Backup's error arrives on.
func (e *env) startStalledBackup(ctx context.Context, release <-chan struct{}) <-chan error {
	e.t.Helper()
	head, _ := e.store.Latest()
	started := make(chan struct{})
	errc := done(func() error {
		return e.store.Backup(ctx, head.ID, func(r io.Reader, _ *raft.SnapshotMeta) error {
			_, err := io.CopyN(io.Discard, r, BackupChunk)
			close(started)
			if err != nil {
				return err
			}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err = io.Copy(io.Discard, r)
			return err
		})
	})
	select {
	case <-started:
	case err := <-errc:
		e.t.Fatalf("backup ended before reading: %v", err)
	}
	return errc
}

// TestBackupHoldsItsLeaseUntilCancelled: a backup holds its lease while
// its client reads, however slowly. New snapshots do not wait for it;
// consolidation does. Cancelling the backup (the client went away) ends it
// with the context's error, releases the lease and closes every file, so
// the consolidation, which renames and removes the chain's files, runs
// (on StrictFS, which refuses that on an open file as Windows does).
func TestBackupHoldsItsLeaseUntilCancelled(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(100, 100_000) // 10 MB: more than the backup reads ahead
	e.mustSnapshot(true)
	e.buildChain(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backup := e.startStalledBackup(ctx, nil)
	if held := e.store.Stats().LeasesHeld; held != 1 {
		t.Fatalf("%d leases held during the backup, want 1", held)
	}
	e.buildChain(2) // incrementals do not wait
	waits := e.store.Stats().LeaseWaits
	consolidation := done(func() error { return e.store.Consolidate(context.Background()) })
	if !waitFor(10*time.Second, func() bool { return e.store.Stats().LeaseWaits > waits }) {
		t.Fatal("consolidation did not wait for the backup's lease")
	}
	select {
	case err := <-consolidation:
		t.Fatalf("consolidation ran under the backup's lease: %v", err)
	default:
	}
	cancel()
	if err := <-backup; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	select {
	case err := <-consolidation:
		if err != nil {
			t.Fatalf("consolidation after the backup: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consolidation still waiting after the backup was cancelled")
	}
	e.checkNothingLeft("cancelled backup")
	e.checkBackup("after consolidation")
}

// TestBackupOfAStalledClientLosesItsLease: a client that stops reading
// loses the backup's lease after the idle timeout (the server's send
// timeout ends its call later still), so consolidation is not held up for
// good; the stalled backup then fails with ErrLeaseRevoked.
func TestBackupOfAStalledClientLosesItsLease(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1, LeaseIdleTimeout: 200 * time.Millisecond})
	e.write(100, 100_000)
	e.mustSnapshot(true)
	e.buildChain(2)
	release := make(chan struct{})
	backup := e.startStalledBackup(context.Background(), release)
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-backup; !errors.Is(err, ErrLeaseRevoked) {
		t.Fatalf("backup whose client stalled: %v", err)
	}
	e.checkNothingLeft("stalled backup")
}

// TestBackupDuringWritesSnapshotsAndConsolidation backs up over and over
// while another goroutine (the FSM's, as it were) writes, snapshots and
// consolidates: every backup is the database at the index it reports.
func TestBackupDuringWritesSnapshotsAndConsolidation(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: 3})
	e.fill(300)
	e.mustSnapshot(true)
	type result struct {
		index uint64
		sum   string
	}
	var (
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
	)
	dir := tempDir(t)
	backups := done(func() error {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return nil
			default:
			}
			head, _ := e.store.Latest()
			path := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
			var index uint64
			err := e.store.Backup(context.Background(), head.ID, func(r io.Reader, meta *raft.SnapshotMeta) error {
				index = meta.Index
				return copyToFile(path, r)
			})
			if err != nil {
				return err
			}
			sum := checksumOfFile(t, path)
			mu.Lock()
			results = append(results, result{index, sum})
			mu.Unlock()
		}
	})
	for i := 0; i < 30; i++ {
		e.updateSameRows(20, 100)
		e.write(10, 2000)
		e.mustSnapshot(false)
		if i%7 == 6 {
			if err := e.store.Consolidate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	if err := <-backups; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) < 2 {
		t.Fatalf("only %d backups ran", len(results))
	}
	for _, r := range results {
		if r.sum != e.sums[r.index] {
			t.Fatalf("backup at index %d holds %s, want %s", r.index, r.sum, e.sums[r.index])
		}
	}
	t.Logf("%d backups, consistent", len(results))
	e.checkNothingLeft("backups")
}

// backupAlloc backs up e's head to io.Discard and returns the bytes the
// process allocated meanwhile.
func (e *env) backupAlloc() (size int64, alloc uint64) {
	e.t.Helper()
	head, _ := e.store.Latest()
	buf := make([]byte, BackupChunk)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := e.store.Backup(context.Background(), head.ID, func(r io.Reader, meta *raft.SnapshotMeta) error {
		size = meta.Size
		_, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf)
		return err
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		e.t.Fatal(err)
	}
	return size, after.TotalAlloc - before.TotalAlloc
}

// TestBackupMemoryDoesNotGrowWithTheDatabase: backing up a database
// several times larger (about 30 and 80 MB) allocates no more: a few
// read-ahead buffers and the WALs' index, not the database.
func TestBackupMemoryDoesNotGrowWithTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 16 and 64 MB databases")
	}
	var allocs []uint64
	for _, mb := range []int{16, 64} {
		e := newEnv(t, Options{ConsolidateAfter: -1})
		e.grow(mb)
		e.mustSnapshot(true)
		e.buildChain(2)
		size, alloc := e.backupAlloc()
		t.Logf("backup of %d MB: %d KiB allocated", size>>20, alloc>>10)
		allocs = append(allocs, alloc)
	}
	const slack = 1 << 20
	if allocs[1] > allocs[0]+slack || allocs[1] > 16<<20 {
		t.Fatalf("a 64 MB backup allocated %d bytes, a 16 MB one %d", allocs[1], allocs[0])
	}
}
