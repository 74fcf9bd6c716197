package server_test

import (
	"context"

	"math/rand/v2"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// BenchmarkCluster runs the table workloads of issue 11 on an in-process
// 3-node cluster over gRPC, with 32 concurrent clients (b.SetParallelism
// times GOMAXPROCS, rounded): point reads at each level on 10,000 rows of
// 64-byte text, single-row inserts, and requests of 1,000 inserts in a
// transaction. All three nodes share the process, so the numbers are for
// profiling and A/B comparison (-cpuprofile), not for the table, which
// scripts/bench-cluster.sh measures on separate processes:
//
//	go test ./server -run '^$' -bench Cluster -cpuprofile cpu.out
func BenchmarkCluster(b *testing.B) {
	c := servertest.New(b, 3, servertest.Options{})
	leader := c.Leader()
	var follower *servertest.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
		}
	}
	ctx := context.Background()
	if _, err := leader.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"}}}); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("v", 64)
	const rows = 10000
	for start := 0; start < rows; start += 1000 {
		if _, err := leader.DB().Execute(ctx, bulkRequest(start, 1000, value)); err != nil {
			b.Fatal(err)
		}
	}
	reads := []struct {
		name  string
		node  *servertest.Node
		level sqlraftv1.ReadConsistency
	}{
		{"read-linearizable", leader, sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE},
		{"read-weak", leader, sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK},
		{"read-none-follower", follower, sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			defer reportCPU(b)()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := &sqlraftv1.QueryRequest{Consistency: r.level, Statements: []*sqlraftv1.Statement{{
						Sql: "SELECT v FROM t WHERE id = ?", Params: []*sqlraftv1.Value{integer(rand.Int64N(rows) + 1)}}}}
					if _, err := r.node.DB().Query(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
	var next atomic.Int64
	next.Store(rows)
	b.Run("insert", func(b *testing.B) {
		defer reportCPU(b)()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{
					Sql: "INSERT INTO t(id, v) VALUES(?, ?)", Params: []*sqlraftv1.Value{integer(next.Add(1)), text(value)}}}}
				if _, err := leader.DB().Execute(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("bulk-1000", func(b *testing.B) {
		defer reportCPU(b)()
		b.SetParallelism(2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := int(next.Add(1000)) - 1000
				if _, err := leader.DB().Execute(ctx, bulkRequest(start, 1000, value)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "rows/s")
	})
}

// bulkRequest inserts rows start+1 .. start+n in one transaction.
func bulkRequest(start, n int, value string) *sqlraftv1.ExecuteRequest {
	req := &sqlraftv1.ExecuteRequest{Transaction: true}
	for i := 1; i <= n; i++ {
		req.Statements = append(req.Statements, &sqlraftv1.Statement{
			Sql: "INSERT INTO t(id, v) VALUES(?, ?)", Params: []*sqlraftv1.Value{integer(int64(start + i)), text(value)}})
	}
	return req
}

// reportCPU reports the process's CPU time (user and system, all three
// nodes and the clients) per operation: unlike ns/op, it barely moves when
// other programs load the machine. Call the result when the run ends.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
