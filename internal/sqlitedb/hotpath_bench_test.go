package sqlitedb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// Benchmarks of the database's hot paths as issue 11's workloads drive them:
// the leader's validation of a bulk request (Inspect of 1,000 identical
// parameterised INSERTs) and a point read by primary key. Run with
//
//	go test ./internal/sqlitedb -run '^$' -bench HotPath -benchmem

// benchValue is the 64-byte TEXT value the bench workloads write.
var benchValue = strings.Repeat("v", 64)

// openBenchDB opens a database holding t(id INTEGER PRIMARY KEY, v TEXT)
// with rows rows of benchValue.
func openBenchDB(b *testing.B, rows int) *DB {
	b.Helper()
	db, err := Open(filepath.Join(tempDir(b), "db.sqlite"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmts := []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"},
		{Sql: `INSERT INTO t(id, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		       SELECT i, ? FROM n`, Params: []*sqlraftv1.Value{benchInt(int64(rows)), benchText(benchValue)}},
	}
	for _, s := range stmts {
		if r := tx.Run(s, false); r.GetExecute().GetError() != "" {
			tx.Rollback()
			b.Fatal(r.GetExecute().GetError())
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return db
}

func benchInt(i int64) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}}
}

func benchText(s string) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}}
}

// bulkInsert is a request of n identical INSERTs, each with its own value.
func bulkInsert(n int) []*sqlraftv1.Statement {
	out := make([]*sqlraftv1.Statement, n)
	for i := range out {
		out[i] = &sqlraftv1.Statement{Sql: "INSERT INTO t(v) VALUES(?)", Params: []*sqlraftv1.Value{benchText(benchValue)}}
	}
	return out
}

// BenchmarkHotPathInspectBulk validates one request of 1,000 INSERTs, as
// the leader does before proposing it.
func BenchmarkHotPathInspectBulk(b *testing.B) {
	db := openBenchDB(b, 1)
	req := bulkInsert(1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Inspect(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(req))/b.Elapsed().Seconds(), "stmts/s")
}

// BenchmarkHotPathPointRead reads one row by primary key from 10,000, as a
// read at any level does once its check has passed.
func BenchmarkHotPathPointRead(b *testing.B) {
	const rows = 10000
	db := openBenchDB(b, rows)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := []*sqlraftv1.Statement{{Sql: "SELECT v FROM t WHERE id = ?", Params: []*sqlraftv1.Value{benchInt(int64(i%rows + 1))}}}
		res, _, err := db.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(res) != 1 || res[0].GetError() != "" || len(res[0].GetRows()) != 1 {
			b.Fatalf("read: %v", res)
		}
	}
}
