package raftlog

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// BenchmarkAppend measures appends of 200-byte entries, one or 64 per
// call, on this machine's disk: raft-wal as sqlraft used it before this
// package ("raft-wal") and the Store ("store"). The figures are in
// raftnode/DESIGN.md, "Raft log store on Windows".
//
//	go test ./internal/raftlog -run '^$' -bench Append -count 5 -benchtime 2s
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("raft-wal/batch=%d", batch), func(b *testing.B) {
			meta := &metadb.BoltMetaDB{}
			w, err := raftwal.Open(tempDir(b), raftwal.WithMetaStore(meta))
			if err != nil {
				b.Fatal(err)
			}
			defer meta.Close()
			defer w.Close()
			benchAppend(b, w, batch)
		})
		b.Run(fmt.Sprintf("store/batch=%d", batch), func(b *testing.B) {
			s, err := Open(tempDir(b), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchAppend(b, s, batch)
		})
	}
}

func benchAppend(b *testing.B, s raft.LogStore, batch int) {
	data := make([]byte, 200)
	next := uint64(1)
	for b.Loop() {
		logs := make([]*raft.Log, batch)
		for j := range logs {
			logs[j] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data}
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}
