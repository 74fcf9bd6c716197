package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// benchClient sends one request and returns how many units of work it did:
// statements for tx, rows for bulk, 1 otherwise.
type benchClient func(ctx context.Context) (units int, err error)

const (
	benchInsertSQL = "INSERT INTO sqlraft_bench(v) VALUES(?)"
	benchReadSQL   = "SELECT v FROM sqlraft_bench WHERE id = ?"
)

// newBenchClient returns one client's request loop body for bc.op. Each
// client builds its requests once and reuses them.
func newBenchClient(g *globals, bc benchConfig, level sqlraftv1.ReadConsistency, db sqlraftv1.DatabaseServiceClient,
	rng *rand.Rand) benchClient {
	value := &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: strings.Repeat("x", bc.valueBytes)}}
	insert := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{Sql: benchInsertSQL, Params: []*sqlraftv1.Value{value}}}}
	if bc.op == "tx" || bc.op == "bulk" {
		insert = &sqlraftv1.ExecuteRequest{Statements: make([]*sqlraftv1.Statement, bc.txSize), Transaction: true}
		for i := range insert.Statements {
			insert.Statements[i] = &sqlraftv1.Statement{Sql: benchInsertSQL, Params: []*sqlraftv1.Value{value}}
		}
	}
	write := func(ctx context.Context) (int, error) {
		cctx, cancel := g.callContext(ctx)
		defer cancel()
		resp, err := db.Execute(cctx, insert)
		if err != nil {
			return 0, err
		}
		for _, r := range resp.GetResults() {
			if r.GetError() != "" {
				return 0, fail("%s", r.GetError())
			}
		}
		return len(insert.Statements), nil
	}
	id := &sqlraftv1.Value_Integer{}
	query := &sqlraftv1.QueryRequest{Consistency: level, Statements: []*sqlraftv1.Statement{{Sql: benchReadSQL,
		Params: []*sqlraftv1.Value{{Kind: id}}}}}
	read := func(ctx context.Context) (int, error) {
		cctx, cancel := g.callContext(ctx)
		defer cancel()
		id.Integer = int64(rng.IntN(bc.rows) + 1)
		resp, err := db.Query(cctx, query)
		if err != nil {
			return 0, err
		}
		if e := resp.GetResults()[0].GetError(); e != "" {
			return 0, fail("%s", e)
		}
		return 1, nil
	}
	switch bc.op {
	case "read":
		return read
	case "mix":
		return func(ctx context.Context) (int, error) {
			if rng.Float64() < bc.readRatio {
				return read(ctx)
			}
			return write(ctx)
		}
	}
	return write
}

// benchSetup creates the bench table and makes sure rows 1..bc.rows exist
// (holding values of bc.valueBytes) for reads to find.
func benchSetup(ctx context.Context, g *globals, db sqlraftv1.DatabaseServiceClient, bc benchConfig) error {
	cctx, cancel := g.callContext(ctx)
	defer cancel()
	resp, err := db.Execute(cctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE IF NOT EXISTS sqlraft_bench(id INTEGER PRIMARY KEY, v TEXT)"},
		{Sql: `INSERT INTO sqlraft_bench(id, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		       SELECT i, ? FROM n WHERE true ON CONFLICT(id) DO NOTHING`,
			Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: int64(bc.rows)}},
				{Kind: &sqlraftv1.Value_Text{Text: strings.Repeat("s", bc.valueBytes)}}}},
	}})
	if err != nil {
		return err
	}
	for _, r := range resp.GetResults() {
		if r.GetError() != "" {
			return fail("%s", r.GetError())
		}
	}
	return nil
}

// runBackupBench times one Backup call, from the request until the copy is
// synced to bc.backupFile (as `sqlraft backup` saves it).
func runBackupBench(ctx context.Context, g *globals, bc benchConfig, conn *grpc.ClientConn) (*benchResult, error) {
	path := bc.backupFile
	if path == "" {
		dir, err := os.MkdirTemp("", "sqlraft-bench-backup")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "backup.db")
	}
	cctx, cancel := g.callContext(ctx)
	defer cancel()
	start := time.Now()
	size, _, err := saveBackup(cctx, conn, &sqlraftv1.BackupRequest{}, path)
	elapsed := time.Since(start)
	res := &benchResult{cfg: bc, elapsed: elapsed, p50: elapsed, p99: elapsed, bytes: size}
	if err != nil {
		res.errors, res.firstErr = 1, fmt.Errorf("backup: %w", err)
		return res, nil
	}
	res.ops, res.units = 1, size
	return res, nil
}
