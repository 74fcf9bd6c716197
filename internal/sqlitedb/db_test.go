package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/testdir"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(tempDir(t), "db.sqlite"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func stmt(sql string, params ...*sqlraftv1.Value) *sqlraftv1.Statement {
	return &sqlraftv1.Statement{Sql: sql, Params: params}
}

func text(s string) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}} }

// write runs statements in one transaction at index, as the FSM does.
func write(t *testing.T, db *DB, index uint64, now time.Time, seed uint64, stmts ...*sqlraftv1.Statement) []*sqlraftv1.RequestResult {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.SetClock(now, seed)
	var out []*sqlraftv1.RequestResult
	for _, s := range stmts {
		out = append(out, tx.Run(s, false))
	}
	if err := tx.SetApplied(Position{Index: index, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeclaredTypesKeepStoredValues(t *testing.T) {
	db := openTest(t)
	res := write(t, db, 1, time.Now(), 1,
		stmt("CREATE TABLE t(ts DATETIME, d DATE, b BOOLEAN)"),
		stmt("INSERT INTO t VALUES('not a time', '2024-01-02', 7)"))
	for _, r := range res {
		if e := r.GetExecute().GetError(); e != "" {
			t.Fatal(e)
		}
	}
	out, pos, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT ts, d, b FROM t")})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Index != 1 {
		t.Errorf("applied index %d, want 1", pos.Index)
	}
	row := out[0].Rows[0].Values
	if row[0].GetText() != "not a time" || row[1].GetText() != "2024-01-02" || row[2].GetInteger() != 7 {
		t.Errorf("values changed by the driver: %v", row)
	}
	if got := out[0].Types; got[0] != "datetime" || got[1] != "date" || got[2] != "boolean" {
		t.Errorf("types %v", got)
	}
}

func TestClockMakesWritesDeterministic(t *testing.T) {
	now := time.Date(2030, 5, 6, 7, 8, 9, 123e6, time.UTC)
	sums := make([]string, 2)
	for i := range sums {
		db := openTest(t)
		res := write(t, db, 1, now, 42,
			stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, r, b, d, ts, c DEFAULT CURRENT_TIMESTAMP, j, s)"),
			stmt("INSERT INTO t(r, b, d, ts, j, s) VALUES(random(), randomblob(8), datetime('now'), CURRENT_TIMESTAMP, julianday('NOW'), strftime('%s'))"))
		if e := res[1].GetExecute().GetError(); e != "" {
			t.Fatal(e)
		}
		out, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT d, ts, c, s FROM t")})
		if err != nil {
			t.Fatal(err)
		}
		v := out[0].Rows[0].Values
		if v[0].GetText() != "2030-05-06 07:08:09" || v[1].GetText() != "2030-05-06 07:08:09" || v[2].GetText() != "2030-05-06 07:08:09" {
			t.Errorf("time values %v", v)
		}
		if v[3].GetText() != "1904281689" {
			t.Errorf("strftime('%%s') = %v", v[3])
		}
		_, sums[i], err = db.Checksum(context.Background())
		if err != nil {
			t.Fatal(err)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("checksums differ: %s vs %s", sums[0], sums[1])
	}
}

func TestInspectRejectsBadStatements(t *testing.T) {
	db := openTest(t)
	cases := map[string]*sqlraftv1.Statement{
		"syntax":         stmt("SELEC 1"),
		"too few":        stmt("SELECT ?, ?", text("a")),
		"too many":       stmt("SELECT ?", text("a"), text("b")),
		"two":            stmt("SELECT 1; SELECT 2"),
		"begin":          stmt("BEGIN"),
		"attach":         stmt("ATTACH 'x.db' AS x"),
		"meta":           stmt("DELETE FROM _sqlraft_applied"),
		"pragma":         stmt("PRAGMA journal_mode=DELETE"),
		"unknown named":  {Sql: "SELECT :a", NamedParams: map[string]*sqlraftv1.Value{"a": text("x"), "b": text("y")}},
		"no kind":        stmt("SELECT ?", &sqlraftv1.Value{}),
		"empty":          stmt("  -- nothing\n"),
		"temp table":     stmt("CREATE TEMP TABLE x(a)"),
		"temp schema":    stmt("CREATE TABLE temp.x(a)"),
		"temp trigger":   stmt("CREATE TEMP TRIGGER x AFTER INSERT ON main._sqlraft_applied BEGIN SELECT 1; END"),
		"conn pragma":    stmt("PRAGMA foreign_keys=ON"),
		"ignore checks":  stmt("PRAGMA ignore_check_constraints=1"),
		"total_changes":  stmt("SELECT total_changes()"),
		"temp pragma":    stmt("PRAGMA temp.user_version = 3"),
		"rename to meta": stmt("ALTER TABLE t RENAME TO \"_sqlraft_hidden\""),
	}
	for name, s := range cases {
		_, err := db.Inspect(context.Background(), []*sqlraftv1.Statement{s})
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("%s: got %v, want InvalidError", name, err)
		}
	}
	ro, err := db.Inspect(context.Background(), []*sqlraftv1.Statement{
		stmt("SELECT 1"), stmt("CREATE TABLE x(a)"), stmt("INSERT INTO nosuch VALUES(1)"),
		{Sql: "SELECT :a, @b", NamedParams: map[string]*sqlraftv1.Value{"a": text("x"), ":b": text("y")}},
		stmt("CREATE TRIGGER tr AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END")})
	if err != nil {
		t.Fatal(err)
	}
	if ro[0] != ReadOnly || ro[1] != Write || ro[2] != Unknown || ro[3] != ReadOnly {
		t.Errorf("read-only flags %v", ro)
	}
}

func TestQueryRefusesWrites(t *testing.T) {
	db := openTest(t)
	_, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT 1"), stmt("CREATE TABLE x(a)")})
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Index != 1 {
		t.Fatalf("got %v", err)
	}
}

func TestReplaceSwapsFile(t *testing.T) {
	a, b := openTest(t), openTest(t)
	write(t, b, 5, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1)"))
	copyPath := filepath.Join(tempDir(t), "copy.db")
	if err := vacuumInto(b, copyPath); err != nil {
		t.Fatal(err)
	}
	if err := a.Replace(copyPath, nil); err != nil {
		t.Fatal(err)
	}
	pa, sa, _ := a.Checksum(context.Background())
	pb, sb, _ := b.Checksum(context.Background())
	if pa != pb || sa != sb || pa.Index != 5 {
		t.Errorf("after replace %v %s, want %v %s", pa, sa, pb, sb)
	}
}

func TestResultCountsOnlyThisStatement(t *testing.T) {
	db := openTest(t)
	res := write(t, db, 1, time.Now(), 1,
		stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"), stmt("INSERT INTO t(v) VALUES(1), (2)"),
		stmt("CREATE INDEX i ON t(v)"), stmt("UPDATE t SET v = 3 WHERE id = 1"), stmt("DELETE FROM t WHERE v = 99"))
	want := [][2]int64{{0, 0}, {2, 2}, {0, 0}, {1, 0}, {0, 0}}
	for i, r := range res {
		e := r.GetExecute()
		if e.GetRowsAffected() != want[i][0] || e.GetLastInsertId() != want[i][1] {
			t.Errorf("statement %d: rows %d, id %d; want %v", i, e.GetRowsAffected(), e.GetLastInsertId(), want[i])
		}
	}
}

// TestLookupPragmasAndStaleRefusals checks that introspection pragmas that
// take an argument are allowed, and that a refusal while a statement ran is
// not blamed on the next statement.
func TestLookupPragmasAndStaleRefusals(t *testing.T) {
	db, err := Open(filepath.Join(tempDir(t), "db.sqlite"), Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE c(a, b)"), stmt("PRAGMA user_version = 7"))
	out, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("PRAGMA table_info(c)"),
		stmt("SELECT count(*) FROM pragma_table_info('c')"), stmt("PRAGMA user_version")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out[0].Rows) != 2 || out[1].Rows[0].Values[0].GetInteger() != 2 || out[2].Rows[0].Values[0].GetInteger() != 7 {
		t.Fatalf("pragma results %v", out)
	}
	res, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT * FROM nosuch")})
	if err != nil || !strings.Contains(res[0].GetError(), "no such table") {
		t.Fatalf("after a pragma: %v %v", res, err)
	}
}

// TestFailedReplaceKeepsTheDatabase replaces with a file that does not
// exist: the old database must stay open and usable.
func TestFailedReplaceKeepsTheDatabase(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1)"))
	if err := db.Replace(filepath.Join(tempDir(t), "missing.db"), nil); err == nil {
		t.Fatal("Replace of a missing file succeeded")
	}
	out, pos, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT count(*) FROM t")})
	if err != nil || pos.Index != 1 || out[0].Rows[0].Values[0].GetInteger() != 1 {
		t.Fatalf("after a failed replace: %v %v %v", out, pos, err)
	}
	write(t, db, 2, time.Now(), 1, stmt("INSERT INTO t VALUES(2)"))
}

// TestReplaceDoesNotWaitForAStalledStream starts a stream whose sender never
// returns (a client that stopped reading) and replaces the database: the
// swap must go ahead within StreamStopWait, and reads see the new file.
func TestReplaceDoesNotWaitForAStalledStream(t *testing.T) {
	if runtime.GOOS == "windows" {
		// Known, found by running this package under wine: the stalled
		// stream's connection keeps the WAL open, so the swap's removal of
		// it is a sharing violation and Replace fails. Left for the Windows
		// issue (Trust II), which owns the live-database swap.
		t.Skip("known Windows failure: a stalled stream's open connection blocks the database swap")
	}
	dir := tempDir(t)
	db, err := Open(filepath.Join(dir, "db.sqlite"), Options{StreamStopWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1), (2), (3)"))
	other := openTest(t)
	write(t, other, 9, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(42)"))
	copyPath := filepath.Join(dir, "copy.db")
	if err := vacuumInto(other, copyPath); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	// Buffered: the stream signals without blocking, and on a loaded
	// machine it can get there before this goroutine waits (an unbuffered
	// signal was dropped then, and the test hung until go test's timeout).
	sending := make(chan struct{}, 1)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- db.QueryStream(context.Background(), stmt("SELECT x FROM t"), 1,
			func(Position, []string, []string, []*sqlraftv1.Row) error {
				select {
				case sending <- struct{}{}:
				default:
				}
				<-release // the client never reads
				return errors.New("client gone")
			})
	}()
	<-sending
	done := make(chan error, 1)
	go func() { done <- db.Replace(copyPath, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Replace waited for a stalled stream")
	}
	pos, _, err := db.Checksum(context.Background())
	if err != nil || pos.Index != 9 {
		t.Fatalf("after replace: %v %v", pos, err)
	}
}

// tempDir is a temporary directory that cleanup can remove under wine.
func tempDir(t testing.TB) string { return testdir.New(t, "sqlitedbtest") }

// vacuumInto writes a consistent copy of db to dst (which must not exist)
// with VACUUM INTO, on a connection of its own (read connections are
// query-only, which VACUUM INTO refuses).
func vacuumInto(db *DB, dst string) error {
	c, err := (&sqlite3.SQLiteDriver{}).Open(db.dsn())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.(*sqlite3.SQLiteConn).ExecContext(context.Background(), "VACUUM INTO ?",
		[]driver.NamedValue{{Ordinal: 1, Value: dst}})
	return err
}
