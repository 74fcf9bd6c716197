package sqlitedb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

func integer(i int64) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}} }

// A text is prepared once per connection: the writer's cache holds one
// statement after a thousand runs of the same INSERT.
func TestCachePreparesEachTextOnce(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))
	var stmts []*sqlraftv1.Statement
	for i := 1; i <= 1000; i++ {
		stmts = append(stmts, stmt("INSERT INTO t VALUES(?, ?)", integer(int64(i)), text("v")))
	}
	for i, r := range write(t, db, 2, time.Now(), 1, stmts...) {
		if e := r.GetExecute(); e.GetError() != "" || e.GetRowsAffected() != 1 || e.GetLastInsertId() != int64(i+1) {
			t.Fatalf("statement %d: %v", i, e)
		}
	}
	if n := db.writer.cache.lru.Len(); n != 2 {
		t.Errorf("writer caches %d statements, want 2 (CREATE and INSERT)", n)
	}
	if _, err := db.Inspect(context.Background(), stmts); err != nil {
		t.Fatal(err)
	}
}

// More distinct texts in one request than a connection keeps: each
// statement is still checked, then run, and every result is right.
func TestCacheOverflowInOneRequest(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"),
		stmt("INSERT INTO t VALUES(1, 'one')"))
	var reads []*sqlraftv1.Statement
	for i := 0; i < 3*stmtCacheSize; i++ {
		reads = append(reads, stmt(fmt.Sprintf("SELECT v, %d FROM t WHERE id = ?", i), integer(1)))
	}
	results, pos, err := db.Query(context.Background(), reads)
	if err != nil {
		t.Fatal(err)
	}
	if pos.Index != 1 {
		t.Errorf("position %d, want 1", pos.Index)
	}
	for i, r := range results {
		if r.GetError() != "" || len(r.GetRows()) != 1 || r.GetRows()[0].GetValues()[1].GetInteger() != int64(i) {
			t.Fatalf("result %d: %v", i, r)
		}
	}
	// The last statement is a write: nothing runs.
	reads = append(reads, stmt("DELETE FROM t"))
	if _, _, err := db.Query(context.Background(), reads); err == nil || !strings.Contains(err.Error(), "not read-only") {
		t.Fatalf("write among reads: %v", err)
	}
}

// A cached statement follows the schema: SQLite prepares it again when the
// table changes, and an error from a dropped table reaches the result.
func TestCachedStatementSeesSchemaChanges(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(a)"), stmt("INSERT INTO t VALUES(1)"))
	q := []*sqlraftv1.Statement{stmt("SELECT * FROM t")}
	res, _, err := db.Query(ctx, q)
	if err != nil || len(res[0].GetColumns()) != 1 {
		t.Fatalf("before: %v %v", res, err)
	}
	write(t, db, 2, time.Now(), 1, stmt("ALTER TABLE t ADD COLUMN b"))
	for range db.opts.Readers + 1 { // every reader has it cached by now, or on this round
		if res, _, err = db.Query(ctx, q); err != nil || len(res[0].GetColumns()) != 2 {
			t.Fatalf("after ALTER: %v %v", res, err)
		}
	}
	write(t, db, 3, time.Now(), 1, stmt("DROP TABLE t"))
	res, _, err = db.Query(ctx, q)
	if err != nil || !strings.Contains(res[0].GetError(), "no such table") {
		t.Fatalf("after DROP: %v %v", res, err)
	}
	// A refused text is refused again, not served from the cache.
	write(t, db, 4, time.Now(), 1, stmt("CREATE TABLE u(a)"))
	bad := stmt("SELECT * FROM u WHERE a = ?")
	for range 2 {
		if _, _, err := db.Query(ctx, []*sqlraftv1.Statement{bad}); err == nil || !strings.Contains(err.Error(), "1 positional") {
			t.Fatalf("missing parameter: %v", err)
		}
	}
}

// A write whose rows nobody reads (INSERT ... RETURNING) or that fails is
// released after it ran: the transaction still commits, and the next use of
// the same text runs afresh.
func TestCachedWriteIsReleased(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
	ins := "INSERT INTO t(v) VALUES(?) RETURNING id"
	for i := 0; i < 3; i++ {
		res := write(t, db, uint64(2+i), time.Now(), 1, stmt(ins, text("x")), stmt("INSERT INTO t(v) VALUES(NULL)"))
		if e := res[0].GetExecute().GetError(); e != "" {
			t.Fatalf("round %d: RETURNING gave %v", i, e)
		}
		if !strings.Contains(res[1].GetExecute().GetError(), "NOT NULL") {
			t.Fatalf("round %d: NULL insert gave %v", i, res[1])
		}
	}
	res, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT count(*) FROM t")})
	if err != nil || res[0].GetRows()[0].GetValues()[0].GetInteger() != 3 {
		t.Fatalf("count: %v %v", res, err)
	}
}

// DDL changes no rows: its result reports none, not the last INSERT's.
func TestCountersIgnoreStatementsThatChangeNoRows(t *testing.T) {
	db := openTest(t)
	res := write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(a)"), stmt("INSERT INTO t VALUES(1), (2)"),
		stmt("CREATE INDEX i ON t(a)"), stmt("UPDATE t SET a = 3 WHERE a = 9"))
	if e := res[1].GetExecute(); e.GetRowsAffected() != 2 || e.GetLastInsertId() != 2 {
		t.Errorf("INSERT: %v", e)
	}
	for _, i := range []int{2, 3} {
		if e := res[i].GetExecute(); e.GetRowsAffected() != 0 || e.GetLastInsertId() != 0 {
			t.Errorf("statement %d: %v", i, e)
		}
	}
}

// Reads report the position of the newest committed write without reading
// sqlraft's table; a reopened database starts from the file's.
func TestQueryReportsAppliedPosition(t *testing.T) {
	db := openTest(t)
	write(t, db, 7, time.Now(), 1, stmt("CREATE TABLE t(a)"))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Run(stmt("INSERT INTO t VALUES(1)"), false)
	if err := tx.SetApplied(Position{Index: 8, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	_, pos, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT 1")})
	if err != nil || pos.Index != 7 {
		t.Fatalf("after a rolled back write: %v %v", pos, err)
	}
	path := db.Path()
	db.Close()
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, pos, err = db2.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT 1"), stmt("SELECT 2")}); err != nil || pos.Index != 7 {
		t.Fatalf("reopened: %v %v", pos, err)
	}
}
