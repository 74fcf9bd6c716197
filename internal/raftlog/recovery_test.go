package raftlog

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
)

const size = 300 // payload bytes per test entry: ~50 entries per 16 KiB segment

// appendUntilFailure appends batches of five from next until one fails and
// returns that batch's first index and error.
func appendUntilFailure(t *testing.T, s *Store, next uint64) (uint64, error) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if err := s.StoreLogs(entries(next, next+4, 1, size)); err != nil {
			return next, err
		}
		next += 5
	}
	t.Fatalf("no append failed up to index %d", next-1)
	return 0, nil
}

// retryAndReopen checks that a failed append left the log as first..failed-1
// (empty when first is 0), that retrying it succeeds, and that the log then
// survives a reopen and takes more entries.
func retryAndReopen(t *testing.T, dir string, segSize int, s *Store, first, failed uint64) {
	t.Helper()
	if first == 0 {
		checkLog(t, s, 0, 0, 1, size)
		first = failed
	} else {
		checkLog(t, s, first, failed-1, 1, size)
	}
	if err := s.StoreLogs(entries(failed, failed+4, 1, size)); err != nil {
		t.Fatalf("retry of the failed append: %v", err)
	}
	checkLog(t, s, first, failed+4, 1, size)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, dir, segSize, nil)
	checkLog(t, s, first, failed+4, 1, size)
	if err := s.StoreLogs(entries(failed+5, failed+9, 1, size)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, first, failed+9, 1, size)
}

// TestFailedAppendStoresNothing: whatever fails in an append (a torn write,
// a failed fsync, entries synced but reported as failed, the first sync of
// a new segment file as on Windows), StoreLogs returns the error, the log is
// as before the call, and the same append retried succeeds.
func TestFailedAppendStoresNothing(t *testing.T) {
	cases := []struct {
		name  string
		fault fault
		setup func(t *testing.T, s *Store) (first, next uint64)
		loop  bool // append until a batch fails (the fault hits a later segment)
	}{
		{name: "torn write", fault: faultTornWrite, setup: filled(1, 10)},
		{name: "sync fails", fault: faultSyncBefore, setup: filled(1, 10)},
		{name: "synced, reported failed", fault: faultSyncAfter, setup: filled(1, 10)},
		{name: "first append of a new log", fault: faultNewFileSync, setup: filled(0, 0)},
		{name: "first append in a new segment", fault: faultNewFileSync, setup: filled(1, 10), loop: true},
		{name: "torn write in a new segment", fault: faultTornWrite, setup: filled(1, 48), loop: true},
		{name: "first append after a snapshot install", fault: faultNewFileSync, setup: installed},
		{name: "torn write after a snapshot install", fault: faultTornWrite, setup: installed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := tempDir(t)
			f := newFaults()
			s, _ := openStore(t, dir, 16<<10, f)
			first, next := c.setup(t, s)
			f.arm(c.fault, 1)
			var err error
			failed := next
			if c.loop {
				failed, err = appendUntilFailure(t, s, next)
			} else {
				err = s.StoreLogs(entries(next, next+4, 1, size))
			}
			if !errors.Is(err, errInjected) || f.hits(c.fault) != 1 {
				t.Fatalf("append at %d: %v (%d faults hit), want the injected fault", failed, err, f.hits(c.fault))
			}
			t.Logf("append at %d failed: %v", failed, err)
			retryAndReopen(t, dir, 16<<10, s, first, failed)
		})
	}
}

// filled is a setup that appends first..last (nothing when first is 0).
func filled(first, last uint64) func(*testing.T, *Store) (uint64, uint64) {
	return func(t *testing.T, s *Store) (uint64, uint64) {
		if first > 0 {
			if err := s.StoreLogs(entries(first, last, 1, size)); err != nil {
				t.Fatal(err)
			}
		}
		return first, last + 1
	}
}

// installed is a setup that leaves the log as a snapshot install does:
// entries 1-50 written, then all deleted; the next append is at 1001.
func installed(t *testing.T, s *Store) (uint64, uint64) {
	filled(1, 50)(t, s)
	if err := s.DeleteRange(1, 50); err != nil {
		t.Fatal(err)
	}
	return 0, 1001
}

// TestRaftWALAloneWedges pins why the store reopens the WAL: raft-wal
// v0.4.0 refuses every append after one whose sync failed. If this starts
// failing, raft-wal changed and the reopening may be unnecessary.
func TestRaftWALAloneWedges(t *testing.T) {
	dir := tempDir(t)
	f := newFaults()
	meta := &metaStore{BoltMetaDB: newBoltMeta(), syncDir: dirSyncPolicy}
	w, err := raftwal.Open(dir, raftwal.WithMetaStore(meta),
		raftwal.WithSegmentFiler(segment.NewFiler(dir, f.wrapVFS(newVFS(dirSyncPolicy)))))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	defer w.Close()
	f.arm(faultSyncAfter, 1)
	if err := w.StoreLogs(entries(1, 5, 1, size)); !errors.Is(err, errInjected) {
		t.Fatalf("first append: %v", err)
	}
	err = w.StoreLogs(entries(1, 5, 1, size))
	if err == nil || !strings.Contains(err.Error(), "non-monotonic") {
		t.Fatalf("retry on raft-wal alone: %v, want a non-monotonic append error", err)
	}
	t.Logf("raft-wal alone, on the retry: %v", err)
	_ = fs.New // raft-wal's fs is what newVFS wraps
}

// TestSealedTailIsRotated: raft-wal sealed a full segment but its rotation
// (recording the seal, starting the next segment) failed. The next append
// fails (raft-wal refuses to append to a sealed segment), the store reopens
// the WAL, completes the rotation, and the retry succeeds.
func TestSealedTailIsRotated(t *testing.T) {
	dir := tempDir(t)
	f := newFaults()
	s, buf := openStore(t, dir, 16<<10, f)
	filled(1, 10)(t, s)
	f.arm(faultCommit, 1) // the next metadata commit is the rotation's
	failed, err := appendUntilFailure(t, s, 11)
	if !errors.Is(err, raftwal.ErrSealed) || f.hits(faultCommit) != 1 {
		t.Fatalf("append at %d: %v (%d faults hit), want ErrSealed after the failed rotation", failed, err, f.hits(faultCommit))
	}
	if !strings.Contains(buf.String(), "completing the rotation") {
		t.Fatal("the store did not complete the rotation")
	}
	retryAndReopen(t, dir, 16<<10, s, 1, failed)
}

// TestSealedTailAfterRestart: the store was closed (as a process stops)
// after an append sealed the tail segment and before the rotation was
// recorded. Opening it again completes the rotation.
func TestSealedTailAfterRestart(t *testing.T) {
	dir := tempDir(t)
	f := newFaults()
	s, _ := openStore(t, dir, 16<<10, f)
	filled(1, 10)(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	next := uint64(11)
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no segment was sealed")
		}
		s, buf := openStore(t, dir, 16<<10, f)
		if strings.Contains(buf.String(), "completing the rotation") {
			checkLog(t, s, 1, next-1, 1, size)
			retryAndReopen(t, dir, 16<<10, s, 1, next)
			return
		}
		f.arm(faultCommit, 1) // if the rotation runs before Close, it fails
		if err := s.StoreLogs(entries(next, next+4, 1, size)); err != nil {
			t.Fatalf("append at %d: %v", next, err)
		}
		next += 5
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		f.arm(faultCommit, 0)
	}
}

// TestFailedDeleteRange: a deletion that failed before reaching the disk
// returns the error and leaves the entries; one that failed after (the
// metadata committed, the next segment file not created) succeeds.
func TestFailedDeleteRange(t *testing.T) {
	for _, c := range []struct {
		fault      fault
		min, max   uint64
		wantErr    bool
		first, end uint64 // the log after the failed deletion
	}{
		{faultCommit, 15, 20, true, 1, 20},
		{faultCreate, 15, 20, false, 1, 14},
		{faultCommit, 1, 20, true, 1, 20},
		{faultCreate, 1, 20, false, 0, 0},
	} {
		t.Run(fmt.Sprintf("%d-%d/fault %d", c.min, c.max, c.fault), func(t *testing.T) {
			dir := tempDir(t)
			f := newFaults()
			s, _ := openStore(t, dir, 16<<10, f)
			filled(1, 20)(t, s)
			f.arm(c.fault, 1)
			err := s.DeleteRange(c.min, c.max)
			if f.hits(c.fault) != 1 || (err != nil) != c.wantErr || err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("DeleteRange: %v (%d faults hit)", err, f.hits(c.fault))
			}
			checkLog(t, s, c.first, c.end, 1, size)
			if err := s.DeleteRange(c.min, c.max); err != nil {
				t.Fatal(err)
			}
			next := c.min
			if c.min == 1 {
				next = 1001
			}
			if err := s.StoreLogs(entries(next, next+4, 1, size)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFailedReopenIsRetried: the append fails and so does the reopening;
// the next use of the store reopens it and drops the failed append's
// entries, and the retry succeeds.
func TestFailedReopenIsRetried(t *testing.T) {
	dir := tempDir(t)
	f := newFaults()
	s, _ := openStore(t, dir, 16<<10, f)
	filled(1, 10)(t, s)
	f.arm(faultSyncAfter, 1)
	f.arm(faultOpenWriter, 1)
	err := s.StoreLogs(entries(11, 15, 1, size))
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("append: %v, want the append's and the reopening's errors", err)
	}
	t.Logf("append: %v", err)
	retryAndReopen(t, dir, 16<<10, s, 1, 11)
}

// TestDeletionRacingRotation: an append seals the tail segment and a
// deletion that replaces the tail (a snapshot install's, or a suffix)
// follows at once, while raft-wal's background rotation may still be
// pending. The log stays consistent, takes appends, and reopens.
func TestDeletionRacingRotation(t *testing.T) {
	for _, c := range []struct {
		name       string
		min, max   uint64
		first, end uint64 // the log after the deletion
	}{
		{"snapshot install", 1, 50, 0, 0},
		{"suffix", 41, 50, 1, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < 10; i++ {
				dir := tempDir(t)
				s, _ := openStore(t, dir, 16<<10, nil)
				filled(1, 50)(t, s) // one batch past 16 KiB: it seals the segment
				if err := s.DeleteRange(c.min, c.max); err != nil {
					t.Fatal(err)
				}
				checkLog(t, s, c.first, c.end, 1, size)
				next := c.end + 1
				if c.end == 0 {
					next = 1001
				}
				retryAndReopen(t, dir, 16<<10, s, c.first, next)
			}
		})
	}
}

// TestDeletionAfterFailedRotation: the rotation after a sealing append
// failed, and the next call is a deletion: it completes the rotation
// (reopening the WAL) and deletes, and appends go on.
func TestDeletionAfterFailedRotation(t *testing.T) {
	dir := tempDir(t)
	f := newFaults()
	s, buf := openStore(t, dir, 16<<10, f)
	filled(1, 10)(t, s)
	f.arm(faultCommit, 1) // the next metadata commit is the rotation's
	next := uint64(11)
	for f.hits(faultCommit) == 0 {
		if next > 500 {
			t.Fatal("no rotation")
		}
		if err := s.StoreLogs(entries(next, next+4, 1, size)); err != nil {
			t.Fatal(err)
		}
		next += 5
		s.mu.Lock()
		sealed := s.filer.tailSealed()
		s.mu.Unlock()
		if sealed { // the rotation is pending or failed: let it run and fail
			for f.hits(faultCommit) == 0 {
				runtime.Gosched()
			}
		}
	}
	if err := s.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "completing the rotation") {
		t.Fatal("the deletion did not complete the rotation")
	}
	checkLog(t, s, 6, next-1, 1, size)
	retryAndReopen(t, dir, 16<<10, s, 6, next)
}
