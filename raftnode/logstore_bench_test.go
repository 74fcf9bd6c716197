package raftnode

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// BenchmarkLogStore compares the Raft log stores hashicorp/raft can use, on
// this machine's disk: raft-boltdb/v2 (bbolt) and raft-wal. sqlraft uses
// raft-wal; the figures are in DESIGN.md.
//
//	go test ./raftnode -run '^$' -bench LogStore -count 3 -benchtime 2s
func benchStore(b *testing.B, s raft.LogStore, batch int) {
	data := make([]byte, 200)
	idx := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		logs := make([]*raft.Log, batch)
		for j := range logs {
			logs[j] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
			idx++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkLogStore(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("bolt/batch=%d", batch), func(b *testing.B) {
			s, err := raftboltdb.NewBoltStore(filepath.Join(b.TempDir(), "raft.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchStore(b, s, batch)
		})
		b.Run(fmt.Sprintf("wal/batch=%d", batch), func(b *testing.B) {
			s, err := wal.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchStore(b, s, batch)
		})
	}
}
