package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

func TestStoreAppendReadReopen(t *testing.T) {
	dir := filepath.Join(tempDir(t), "raft") // Open creates it
	s, buf := openStore(t, dir, 0, nil)
	checkLog(t, s, 0, 0, 1, 10)
	if err := s.StoreLogs(entries(1, 100, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(entries(101, 101, 1, 10)[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 101, 1, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(entries(102, 102, 1, 10)[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close: %v, want ErrClosed", err)
	}
	s, _ = openStore(t, dir, 0, nil)
	checkLog(t, s, 1, 101, 1, 10)
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
		t.Fatalf("CurrentTerm = %d, %v", term, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Fatalf("LastVoteCand = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); err != nil || v != 0 {
		t.Fatalf("missing key = %d, %v", v, err)
	}
	noErrorsLogged(t, buf)
}

func TestCompactedEntriesAreGone(t *testing.T) {
	s, _ := openStore(t, tempDir(t), 0, nil)
	if err := s.StoreLogs(entries(1, 20, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(5, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(5) after compaction: %v, want ErrLogNotFound", err)
	}
	checkLog(t, s, 11, 20, 1, 1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	t.Logf("raft-wal itself on a compacted index: %v", s.wal.GetLog(5, &l))
}

// TestPlainRaftWALDataDir: a data directory written by raft-wal v0.4.0 as
// sqlraft used it before this package opens with the store, and the other
// way round.
func TestPlainRaftWALDataDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("raft-wal alone cannot create a data directory on Windows: it syncs the directory, which Windows refuses")
	}
	dir := tempDir(t)
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(dir, raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.StoreLogs(entries(1, 50, 2, 30)), w.SetUint64([]byte("CurrentTerm"), 2)); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Close(), meta.Close()); err != nil {
		t.Fatal(err)
	}
	s, _ := openStore(t, dir, 0, nil)
	checkLog(t, s, 1, 50, 2, 30)
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 2 {
		t.Fatalf("CurrentTerm = %d, %v", term, err)
	}
	if err := errors.Join(s.StoreLogs(entries(51, 60, 2, 30)), s.SetUint64([]byte("CurrentTerm"), 3), s.Close()); err != nil {
		t.Fatal(err)
	}
	meta = &metadb.BoltMetaDB{}
	if w, err = raftwal.Open(dir, raftwal.WithMetaStore(meta)); err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	defer w.Close()
	if last, err := w.LastIndex(); err != nil || last != 60 {
		t.Fatalf("raft-wal's last index %d, %v; want 60", last, err)
	}
	if term, err := w.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
		t.Fatalf("raft-wal's CurrentTerm = %d, %v", term, err)
	}
}

// TestSegmentsRotateAndDelete runs the segment life cycle that failed on
// Windows: rotations (a new file, its first sync), compaction deleting
// sealed segments, and a snapshot install's truncation of the whole log
// followed by an append far past it.
func TestSegmentsRotateAndDelete(t *testing.T) {
	dir := tempDir(t)
	s, buf := openStore(t, dir, 16<<10, nil)
	for i := uint64(0); i < 20; i++ { // ~60 KiB of entries: several segments
		if err := s.StoreLogs(entries(i*10+1, i*10+10, 1, 300)); err != nil {
			t.Fatal(err)
		}
	}
	checkLog(t, s, 1, 200, 1, 300)
	before := segmentFiles(t, dir)
	if len(before) < 3 {
		t.Fatalf("only %d segment files: %v", len(before), before)
	}
	if err := s.DeleteRange(1, 150); err != nil { // compaction
		t.Fatal(err)
	}
	checkLog(t, s, 151, 200, 1, 300)
	if after := segmentFiles(t, dir); len(after) >= len(before) {
		t.Fatalf("compaction deleted no segment file: %v, then %v", before, after)
	}
	if err := s.DeleteRange(151, 200); err != nil { // a snapshot install removes everything
		t.Fatal(err)
	}
	checkLog(t, s, 0, 0, 1, 300)
	if err := s.StoreLogs(entries(1001, 1010, 2, 300)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1001, 1010, 2, 300)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, dir, 16<<10, nil)
	checkLog(t, s, 1001, 1010, 2, 300)
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Errorf("segment files left after reopening: %v", files)
	}
	noErrorsLogged(t, buf)
}

// TestDirectorySyncPolicy: directories are synced everywhere but Windows,
// and Windows really refuses it (the reason for the policy).
func TestDirectorySyncPolicy(t *testing.T) {
	dir := tempDir(t)
	if runtime.GOOS == "windows" {
		if dirSyncPolicy != nil {
			t.Fatal("directory sync is on under Windows")
		}
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		t.Logf("Windows on a directory sync: %v", f.Sync())
		return
	}
	if dirSyncPolicy == nil {
		t.Fatalf("directory sync is off on %s", runtime.GOOS)
	}
	if err := dirSyncPolicy(dir); err != nil {
		t.Fatal(err)
	}
}

// TestNewFilesSyncTheirDirectory: a segment file's first Sync syncs its
// directory, later ones do not, a failed directory sync fails the Sync and
// is retried, and deleting a file syncs the directory.
func TestNewFilesSyncTheirDirectory(t *testing.T) {
	dir := tempDir(t)
	var synced []string
	var fail bool
	v := newVFS(func(d string) error {
		if fail {
			return errInjected
		}
		synced = append(synced, d)
		return nil
	})
	f, err := v.Create(dir, "a.wal", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fail = true
	if err := f.Sync(); !errors.Is(err, errInjected) {
		t.Fatalf("Sync with a failing directory sync: %v", err)
	}
	fail = false
	if err := errors.Join(f.Sync(), f.Sync()); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != dir {
		t.Fatalf("directory syncs %v, want one of %s", synced, dir)
	}
	w, err := v.OpenWriter(dir, "a.wal")
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Sync(), w.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := v.Delete(dir, "a.wal"); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 3 {
		t.Fatalf("directory syncs %v, want 3 (create, reopen, delete)", synced)
	}
}

// TestTruncatedTailSurvivesReopen: raft-wal v0.4.0 seals a segment cut by a
// tail truncation (Raft clearing a conflicting suffix) without writing its
// index, and once reopened cannot read it (hashicorp/raft-wal#31). The store
// reads such a segment through.
func TestTruncatedTailSurvivesReopen(t *testing.T) {
	dir := tempDir(t)
	s, _ := openStore(t, dir, 16<<10, nil)
	if err := s.StoreLogs(entries(1, 20, 1, 300)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(15, 20); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 14, 1, 300)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, dir, 16<<10, nil)
	checkLog(t, s, 1, 14, 1, 300)
	if err := s.StoreLogs(entries(15, 15, 1, 300)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 15, 1, 300)
}
