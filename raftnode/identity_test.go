package raftnode_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/raftnode"
)

func TestClaimDataDirRecordsTheFirstID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh", "data") // does not exist yet
	if s, err := raftnode.ReadStoredID(dir); err != nil || s != (raftnode.StoredID{}) {
		t.Fatalf("missing dir: %+v, %v", s, err)
	}
	if err := raftnode.ClaimDataDir(dir, "n1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, raftnode.IDFileName))
	if err != nil || string(b) != "n1\n" {
		t.Fatalf("id file: %q, %v", b, err)
	}
	if err := raftnode.ClaimDataDir(dir, "n1"); err != nil {
		t.Fatalf("same id again: %v", err)
	}
	err = raftnode.ClaimDataDir(dir, "n2")
	var mismatch *raftnode.IDMismatchError
	if !errors.As(err, &mismatch) || mismatch.Stored != "n1" || mismatch.Requested != "n2" {
		t.Fatalf("other id: %v", err)
	}
	if !strings.Contains(err.Error(), `"n1"`) || !strings.Contains(err.Error(), `"n2"`) {
		t.Fatalf("message does not name both ids: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left more than the id file: %v", entries)
	}
	if s, err := raftnode.ReadStoredID(dir); err != nil || s.ID != "n1" || s.HasState {
		t.Fatalf("stored: %+v, %v", s, err)
	}
}

// A data directory written before IDs were recorded has state but no ID
// file: it reports HasState, and the first claim records the ID.
func TestClaimDataDirAdoptsOlderDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "raft"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := raftnode.ReadStoredID(dir)
	if err != nil || s.ID != "" || !s.HasState {
		t.Fatalf("older dir: %+v, %v", s, err)
	}
	if err := raftnode.ClaimDataDir(dir, "old-host"); err != nil {
		t.Fatal(err)
	}
	if s, err := raftnode.ReadStoredID(dir); err != nil || s.ID != "old-host" || !s.HasState {
		t.Fatalf("after claim: %+v, %v", s, err)
	}
}

func TestStoredIDRejectsBadIDs(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", "a\nb", " a", "a\r"} {
		if err := raftnode.ClaimDataDir(dir, id); err == nil {
			t.Errorf("claimed with %q", id)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, raftnode.IDFileName), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := raftnode.ReadStoredID(dir); err == nil {
		t.Fatal("read an empty id file without error")
	}
}

// TestNewRefusesAnotherNodesDataDir starts a real node, closes it, and
// starts one with another ID on the same directory.
func TestNewRefusesAnotherNodesDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := raftnode.Config{ID: "first", DataDir: dir, RaftAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)}
	n, err := raftnode.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.BootstrapVoters([]raftnode.Member{n.Local()}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := raftnode.ReadStoredID(dir)
	if err != nil || s.ID != "first" || !s.HasState {
		t.Fatalf("after first start: %+v, %v", s, err)
	}
	cfg.ID = "second"
	n, err = raftnode.New(cfg)
	var mismatch *raftnode.IDMismatchError
	if !errors.As(err, &mismatch) {
		if n != nil {
			n.Close()
		}
		t.Fatalf("second id on the same dir: %v", err)
	}
}
