package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "

// runEntry applies statements as one entry under limits, as the FSM does,
// and returns the results and whether SQLite rolled the transaction back.
func runEntry(t *testing.T, db *DB, index uint64, l Limits, stmts ...*sqlraftv1.Statement) ([]*sqlraftv1.RequestResult, bool) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.SetClock(time.Unix(0, 0), 1)
	tx.SetLimits(l)
	var out []*sqlraftv1.RequestResult
	for _, s := range stmts {
		out = append(out, tx.Run(s, false))
	}
	if tx.Aborted() {
		tx.Rollback()
		return out, true
	}
	if err := tx.SetApplied(Position{Index: index, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return out, false
}

func errOf(r *sqlraftv1.RequestResult) string {
	if q := r.GetQuery(); q != nil {
		return q.GetError()
	}
	return r.GetExecute().GetError()
}

func TestBudgetFindsHandle(t *testing.T) {
	db := openTest(t)
	if db.writer.budget == nil || db.writer.budget.db == nil {
		t.Fatal("the writer has no budget: go-sqlite3 no longer keeps its handle in SQLiteConn.db")
	}
}

func TestBudgetStopsEndlessWrite(t *testing.T) {
	db := openTest(t)
	runEntry(t, db, 1, Limits{}, stmt("CREATE TABLE t(x)"))
	res, aborted := runEntry(t, db, 2, Limits{Steps: 1_000_000}, stmt(endless+"INSERT INTO t SELECT x FROM c"), stmt("INSERT INTO t VALUES(1)"))
	if !aborted {
		t.Fatal("an interrupted write must roll the transaction back")
	}
	if e := errOf(res[0]); !strings.Contains(e, "--max-write-steps") {
		t.Fatalf("first statement: %q", e)
	}
	if e := errOf(res[1]); !strings.HasPrefix(e, "not executed") {
		t.Fatalf("second statement ran after the budget ran out: %q", e)
	}
	// The next entry gets a fresh allowance.
	res, aborted = runEntry(t, db, 3, Limits{Steps: 1_000_000}, stmt("INSERT INTO t VALUES(1)"))
	if aborted || errOf(res[0]) != "" {
		t.Fatalf("next entry: aborted=%v %q", aborted, errOf(res[0]))
	}
}

func TestBudgetStopsEndlessRead(t *testing.T) {
	db := openTest(t)
	res, aborted := runEntry(t, db, 1, Limits{Steps: 1_000_000}, stmt(endless+"SELECT max(x) FROM c"))
	if aborted {
		t.Fatal("an interrupted read must not roll back the transaction")
	}
	if e := errOf(res[0]); !strings.Contains(e, "--max-write-steps") {
		t.Fatalf("got %q", e)
	}
}

func TestBudgetRowsAndBytes(t *testing.T) {
	db := openTest(t)
	runEntry(t, db, 1, Limits{}, stmt("CREATE TABLE t(x)"), stmt("CREATE TABLE w(k PRIMARY KEY, v) WITHOUT ROWID"))
	res, _ := runEntry(t, db, 2, Limits{Rows: 100}, stmt(endless+"INSERT INTO t SELECT x FROM c LIMIT 1000"))
	if e := errOf(res[0]); !strings.Contains(e, "--max-write-rows") {
		t.Fatalf("rows: %q", e)
	}
	res, _ = runEntry(t, db, 3, Limits{Bytes: 10 << 20}, stmt(endless+"INSERT INTO w SELECT x, zeroblob(1000000) FROM c LIMIT 100"))
	if e := errOf(res[0]); !strings.Contains(e, "--max-write-bytes") {
		t.Fatalf("bytes (WITHOUT ROWID): %q", e)
	}
	res, aborted := runEntry(t, db, 4, Limits{Rows: 100, Bytes: 10 << 20}, stmt(endless+"INSERT INTO t SELECT x FROM c LIMIT 100"))
	if aborted || errOf(res[0]) != "" {
		t.Fatalf("within the limits: %q", errOf(res[0]))
	}
	var be *BudgetError
	if !errors.As(&BudgetError{Limit: "rows"}, &be) {
		t.Fatal("BudgetError")
	}
}

// BenchmarkSteps measures how fast SQLite runs VM steps under the budget,
// to choose the default --max-write-steps.
func BenchmarkSteps(b *testing.B) {
	db, err := Open(tempDir(b)+"/db.sqlite", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < b.N; i++ {
		tx, _ := db.Begin()
		tx.SetLimits(Limits{Steps: 10_000_000})
		r := tx.Run(stmt(endless+"SELECT max(x) FROM c"), false)
		tx.Rollback()
		if !strings.Contains(errOf(r), "steps") {
			b.Fatal(errOf(r))
		}
	}
}

// TestValidationDoesNotWaitForLongReads holds every reader with an endless
// read: statements are still validated (and the FSM's lookups served) at
// once, on connections of their own.
func TestValidationDoesNotWaitForLongReads(t *testing.T) {
	db := openTest(t)
	runEntry(t, db, 1, Limits{}, stmt("CREATE TABLE t(x)"))
	readCtx, stopReads := context.WithCancel(context.Background())
	done := make(chan error, db.opts.Readers)
	for i := 0; i < db.opts.Readers; i++ {
		go func() {
			_, _, err := db.Query(readCtx, []*sqlraftv1.Statement{stmt(endless + "SELECT max(x) FROM c")})
			done <- err
		}()
	}
	for len(db.readers) > 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.Inspect(ctx, []*sqlraftv1.Statement{stmt("INSERT INTO t VALUES(1)")}); err != nil {
		t.Fatalf("validation waited for the readers: %v", err)
	}
	if _, err := db.Applied(ctx); err != nil {
		t.Fatalf("applied index: %v", err)
	}
	stopReads()
	for i := 0; i < db.opts.Readers; i++ {
		if err := <-done; !errors.Is(err, context.Canceled) && !strings.Contains(fmt.Sprint(err), "interrupt") {
			t.Errorf("endless read ended with %v", err)
		}
	}
}
