package raftnode

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

func TestCompactedEntriesAreGone(t *testing.T) {
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(t.TempDir(), raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	defer w.Close()
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	store := compactedWAL{w}
	var l raft.Log
	if err := store.GetLog(5, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(5) after compaction: %v, want ErrLogNotFound", err)
	}
	if err := store.GetLog(11, &l); err != nil || l.Index != 11 {
		t.Fatalf("GetLog(11): %v, %d", err, l.Index)
	}
	t.Logf("raft-wal itself on a compacted index: %v", w.GetLog(5, &l))
}
