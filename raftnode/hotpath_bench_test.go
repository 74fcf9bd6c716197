package raftnode_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// Benchmarks of raftnode's hot paths as issue 11's workloads drive them: a
// linearizable read's read-index round, a LINEARIZABLE point read and
// committed writes (one INSERT from 1 and from 32 callers, 100 INSERTs in a
// transaction) end to end on a real 3-node in-process cluster, and the
// FSM's apply of one entry holding a 1,000-statement INSERT request and of
// batches of one-INSERT entries. Run with
//
//	go test ./raftnode -run '^$' -bench HotPath -benchmem
//
// The parallel variants run 32 readers at once (the 32 clients), so
// their ns/op is the wall time per read with rounds shared.

// benchReaders is how many goroutines the parallel read benchmarks run.
const benchReaders = 32

// benchValue is the 64-byte TEXT value the bench workloads write.
var benchValue = strings.Repeat("v", 64)

// newReadCluster starts a 3-node cluster whose table t holds rows rows of
// benchValue, and returns its leader.
func newReadCluster(b *testing.B, rows int) *raftnode.Node {
	b.Helper()
	c := newCluster(b, 3, nil)
	execute(b, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
		fmt.Sprintf(`INSERT INTO t(id, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d)
		             SELECT i, '%s' FROM n`, rows, benchValue))
	c.waitConverged(clusterTimeout)
	return c.leader().Raft
}

// parallelReaders makes b.RunParallel run benchReaders goroutines.
func parallelReaders(b *testing.B) {
	b.SetParallelism(max(1, benchReaders/runtime.GOMAXPROCS(0)))
}

// BenchmarkHotPathReadIndexRound measures Node.LinearizableRead: one
// read-index round (commit index, quorum confirmation, wait until applied)
// with no statement run.
func BenchmarkHotPathReadIndexRound(b *testing.B) {
	leader := newReadCluster(b, 1)
	read := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := leader.LinearizableRead(ctx); err != nil {
			b.Error(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			read()
		}
	})
	b.Run(fmt.Sprintf("parallel=%d", benchReaders), func(b *testing.B) {
		b.ReportAllocs()
		parallelReaders(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				read()
			}
		})
	})
}

// BenchmarkHotPathQueryLinearizable measures Node.Query of one point read at
// LINEARIZABLE from 10,000 rows: the round, then the read.
func BenchmarkHotPathQueryLinearizable(b *testing.B) {
	const rows = 10000
	leader := newReadCluster(b, rows)
	level := raftnode.Read{Level: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE}
	query := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q := []*sqlraftv1.Statement{{Sql: "SELECT v FROM t WHERE id = ?",
			Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: int64(i%rows + 1)}}}}}
		res, _, err := leader.Query(ctx, level, q)
		if err == nil && (len(res) != 1 || res[0].GetError() != "" || len(res[0].GetRows()) != 1) {
			err = fmt.Errorf("unexpected result %v", res)
		}
		if err != nil {
			b.Error(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			query(i)
		}
	})
	b.Run(fmt.Sprintf("parallel=%d", benchReaders), func(b *testing.B) {
		b.ReportAllocs()
		parallelReaders(b)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				query(i * 7919)
			}
		})
	})
}

// BenchmarkHotPathFSMApplyBulk applies entries each holding one request of
// 1,000 parameterised INSERTs of a 64-byte TEXT value in a transaction, as
// every replica does for the bulk workload.
func BenchmarkHotPathFSMApplyBulk(b *testing.B) {
	const size = 1000
	fsm := newBenchFSM(b)
	index := uint64(0)
	apply := func(data []byte) {
		index++
		res := fsm.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
		r, ok := res.(*raftnode.Result)
		if !ok || r.Err != nil {
			b.Fatalf("entry %d: %v", index, res)
		}
		for _, rr := range r.Results {
			if e := rr.GetExecute().GetError(); e != "" {
				b.Fatalf("entry %d: %s", index, e)
			}
		}
	}
	apply(benchCommand(b, false, &sqlraftv1.Statement{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"}))
	insert := make([]*sqlraftv1.Statement, size)
	for i := range insert {
		insert[i] = &sqlraftv1.Statement{Sql: "INSERT INTO t(v) VALUES(?)",
			Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Text{Text: benchValue}}}}
	}
	data := benchCommand(b, true, insert...)
	measureCPU(b, func() {
		for i := 0; i < b.N; i++ {
			apply(data)
		}
	})
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkHotPathFSMApplyBatch applies what a follower's FSM receives
// under the insert-32 workload: batches of 32 entries, each one
// non-transactional request of a single INSERT of a 64-byte TEXT value, in
// one ApplyBatch. ns/op is per entry.
func BenchmarkHotPathFSMApplyBatch(b *testing.B) {
	const batch = 32
	fsm := newBenchFSM(b)
	index := uint64(1)
	fsm.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand,
		Data: benchCommand(b, false, &sqlraftv1.Statement{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"})})
	data := benchCommand(b, false, &sqlraftv1.Statement{Sql: "INSERT INTO t(v) VALUES(?)",
		Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Text{Text: benchValue}}}})
	logs := make([]*raft.Log, batch)
	measureCPU(b, func() { applyBatches(b, fsm, logs, index, data) })
}

// applyBatches applies b.N entries holding data, after index, in batches of
// len(logs).
func applyBatches(b *testing.B, fsm *raftnode.FSM, logs []*raft.Log, index uint64, data []byte) {
	batch := len(logs)
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := 0; j < n; j++ {
			index++
			logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
		}
		for j, res := range fsm.ApplyBatch(logs[:n]) {
			r, ok := res.(*raftnode.Result)
			if !ok || r.Err != nil || r.Results[0].GetExecute().GetError() != "" || r.Results[0].GetExecute().GetRowsAffected() != 1 {
				b.Fatalf("entry %d: %v", logs[j].Index, res)
			}
		}
	}
}

// benchCommand encodes a request entry as the leader proposes it.
func benchCommand(b *testing.B, transaction bool, stmts ...*sqlraftv1.Statement) []byte {
	b.Helper()
	data, err := proto.Marshal(&raftlogv1.Command{NowUnixNanos: 1, RandomSeed: 2, Proposer: "n1",
		Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{Statements: stmts, Transaction: transaction}}})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// newBenchFSM returns an FSM over a fresh database and snapshot store.
func newBenchFSM(b *testing.B) *raftnode.FSM {
	b.Helper()
	db, err := sqlitedb.Open(filepath.Join(b.TempDir(), "db.sqlite"), sqlitedb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	store, err := snapshot.New(b.TempDir(), snapshot.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	fsm, err := raftnode.NewFSM("n1", db, store, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return fsm
}

// BenchmarkHotPathWrite measures committed writes through Node.Execute on a
// real 3-node in-process cluster, as the bench workloads drive them: one
// INSERT per request from one client and from 32 at once, and 100 INSERTs
// in one transactional request. Besides the wall time it reports
// cpu-µs/op, the CPU time (user + system) the whole process — leader, both
// followers and the callers — spent per request: on a busy machine that is
// the steadier number, and the one that bounds throughput when the nodes
// share few cores.
func BenchmarkHotPathWrite(b *testing.B) {
	c := newCluster(b, 3, nil)
	execute(b, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	leader := c.leader().Raft
	insert := func(n int) []*sqlraftv1.Statement {
		stmts := make([]*sqlraftv1.Statement, n)
		for i := range stmts {
			stmts[i] = &sqlraftv1.Statement{Sql: "INSERT INTO t(v) VALUES(?)",
				Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Text{Text: benchValue}}}}
		}
		return stmts
	}
	write := func(stmts []*sqlraftv1.Statement, tx bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := leader.Execute(ctx, stmts, tx)
		if err == nil && len(res.Results) != len(stmts) {
			err = fmt.Errorf("%d results for %d statements", len(res.Results), len(stmts))
		}
		if err != nil {
			b.Error(err)
		}
	}
	b.Run("insert/serial", func(b *testing.B) {
		stmts := insert(1)
		measureCPU(b, func() {
			for i := 0; i < b.N; i++ {
				write(stmts, false)
			}
		})
	})
	b.Run(fmt.Sprintf("insert/parallel=%d", benchReaders), func(b *testing.B) {
		parallelReaders(b)
		measureCPU(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				stmts := insert(1)
				for pb.Next() {
					write(stmts, false)
				}
			})
		})
	})
	b.Run("tx100/serial", func(b *testing.B) {
		stmts := insert(100)
		measureCPU(b, func() {
			for i := 0; i < b.N; i++ {
				write(stmts, true)
			}
		})
		b.ReportMetric(float64(b.N*len(stmts))/b.Elapsed().Seconds(), "stmts/s")
	})
	c.waitConverged(clusterTimeout)
}

// measureCPU runs fn as the benchmark's timed part and reports the process's
// CPU time per operation as cpu-µs/op: on a busy machine the wall time
// per operation says more about the other load than about the code.
func measureCPU(b *testing.B, fn func()) {
	b.Helper()
	b.ReportAllocs()
	before := processCPU(b)
	b.ResetTimer()
	fn()
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the CPU time (user + system) the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
