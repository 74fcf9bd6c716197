package sqlitedb

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// FuzzStatement checks statement validation and parameter binding on every
// path a client statement takes: Inspect (the check before a write is
// proposed), Query (a local read), and Tx.Run on the writer as a STRONG read
// and as a write. The SQL text is any valid UTF-8 (protobuf strings are);
// the parameters are decoded from the second argument (see fuzzParams).
// Properties:
//
//   - nothing panics, and every error is a clean one: an *InvalidError for
//     the statement (with valid UTF-8 in its reason, which goes into a
//     protobuf message) or, for Query, ErrResultTooLarge or the context's;
//   - every result marshals (its strings are valid UTF-8);
//   - Inspect and Query agree on whether a statement writes;
//   - a statement that validation accepts and SQLite prepares is the whole
//     text (no second statement is silently dropped) and has the
//     parameters the scanner found, so each one is bound or refused;
//   - what the writer runs as a read leaves the file unchanged, and a write
//     never creates anything in sqlraft's reserved _sqlraft namespace.
//
// One database serves every input of a fuzzing process: writes are rolled
// back, so its content is the fixture fuzzEnv creates.
func FuzzStatement(f *testing.F) {
	for _, s := range statementSeeds {
		f.Add(s.sql, s.params)
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, sql string, params []byte) {
		sql = strings.ToValidUTF8(sql, "\uFFFD")
		defer time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("input still running after 10s: %q %q", sql, params)) }).Stop()
		s := fuzzParams(sql, params)
		kind := env.inspect(t, s)
		env.query(t, s, kind)
		if kind == ReadOnly || kind == Write {
			env.prepared(t, s)
		}
		env.writerRead(t, s)
		env.writerWrite(t, s)
	})
}

// statementSeeds are statements of every kind sqlraft meets, with
// parameters encoded as fuzzParams reads them.
var statementSeeds = []struct {
	sql    string
	params []byte
}{
	{"SELECT 1", nil},
	{"SELECT * FROM t WHERE id = ?", []byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1}},
	{"SELECT ?2, ?", []byte{0, 0, 3, 3, 'a', 'b', 'c', 4, 2, 0xff, 0}},
	{"SELECT a FROM t WHERE a = :a OR b = @b OR c = $c", []byte{0, 0, 3, 1, 'x', 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, 4, 1, 2, 3, 4}},
	{"SELECT :x", []byte{2, 2, 1, 'x', 5, 2, 0xc3, 0x28, 2, ':', 'y', 0}},
	{"INSERT INTO t(a, b, c) VALUES(?, ?, ?)", []byte{0, 0, 3, 2, 'h', 'i', 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 4, 0}},
	{"UPDATE t SET a = upper(a) WHERE id > ?", []byte{1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	{"DELETE FROM kv WHERE k = $k", []byte{0, 2, 3, 1, 'a'}},
	{"INSERT INTO kv VALUES(:k, :v) ON CONFLICT(k) DO UPDATE SET v = excluded.v", []byte{0, 0, 3, 1, 'z', 6}},
	{"CREATE TABLE n(x INTEGER PRIMARY KEY, y TEXT NOT NULL DEFAULT 'd')", nil},
	{"CREATE INDEX n_y ON t(a, b)", nil},
	{"CREATE VIEW w AS SELECT a FROM t", nil},
	{"CREATE TRIGGER tr AFTER INSERT ON kv BEGIN UPDATE t SET a = CASE WHEN 1 THEN 'x' END; DELETE FROM log; END", nil},
	{"DROP TABLE log", nil},
	{"ALTER TABLE t ADD COLUMN f", nil},
	{"ALTER TABLE log RENAME TO _sqlraft_x", nil},
	{"SELECT 1; SELECT 2", nil},
	{"SELECT 'a;b' -- ;\n", nil},
	{"/* only a comment */ ;", nil},
	{"", nil},
	{"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", nil},
	{"SELECT json_extract(?, '$.a'), typeof(?2)", []byte{1, 2, 3, 7, '{', '"', 'a', '"', ':', '1', '}', 5, 1, 0x80}},
	{"SELECT * FROM _sqlraft_applied", nil},
	{"BEGIN", nil},
	{"ATTACH 'x.db' AS x", nil},
	{"CREATE TEMP TABLE tt(x)", nil},
	{"PRAGMA user_version = 3", nil},
	{"PRAGMA table_info(t)", nil},
	{"PRAGMA journal_mode = DELETE", nil},
	{"SELECT total_changes(), changes(), last_insert_rowid()", nil},
	{"SELECT random(), randomblob(4), datetime('now')", nil},
	{"INSERT OR ROLLBACK INTO kv VALUES('a', 2)", nil},
	{"SELECT zeroblob(2000000)", nil},
	{"SELECT d, e FROM t", nil},
	{"VACUUM", nil},
	{"VACUUM INTO 'copy.db'", nil},
	{"INSERT INTO rt VALUES(?, ?, ?)", []byte{1, 3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0}},
	{"SELECT id FROM rt WHERE x0 <= :x AND x1 >= :x", []byte{0, 1, 2, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f}},
	{"SELECT key, value, type FROM json_each(?)", []byte{1, 1, 3, 9, '[', '1', ',', '"', 'a', '"', ',', '{', '}'}},
	{"CREATE VIRTUAL TABLE rt2 USING rtree(id, a, b)", nil},
	{"REINDEX", nil},
	{"ANALYZE", nil},
}

// fuzzEnv is one fuzzing process's database and what the checks compare
// against.
type fuzzEnv struct {
	db       *DB
	reserved int // objects in the reserved namespace once the fixture is in
}

// fuzzMaxLength caps the size of any one value on every connection of the
// fuzzed database, so that an input like zeroblob(1e9) fails quickly instead
// of allocating a gigabyte (sqlraft itself bounds results by their size, but
// only once a row is read).
const fuzzMaxLength = 1 << 20

func newFuzzEnv(f *testing.F) *fuzzEnv {
	db, err := Open(filepath.Join(tempDir(f), "db.sqlite"), Options{MaxResultBytes: 1 << 20, Readers: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	for _, pool := range []chan *conn{db.readers, db.checkers} {
		conns := make([]*conn, 0, cap(pool))
		for range cap(pool) {
			c := <-pool
			c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, fuzzMaxLength)
			conns = append(conns, c)
		}
		for _, c := range conns {
			pool <- c
		}
	}
	db.writer.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, fuzzMaxLength)
	tx, err := db.Begin()
	if err != nil {
		f.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b REAL, c BLOB, d DATETIME, e BOOLEAN)",
		"CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID",
		"CREATE TABLE log(x)",
		`CREATE TABLE "begin"(x)`,
		"CREATE INDEX t_a ON t(a)",
		"CREATE VIEW v AS SELECT id, a FROM t",
		"CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1)",
		"INSERT INTO rt VALUES(1, 0.5, 2.5)",
		"CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES(new.id); END",
		"INSERT INTO t VALUES(1, 'one', 1.5, x'01', '2024-01-01', 1), (2, 'two', NULL, NULL, 'x', 0)",
		"INSERT INTO kv VALUES('a', 1), ('b', 'x')",
	} {
		if e := resultError(tx.Run(&sqlraftv1.Statement{Sql: sql}, false)); e != "" {
			f.Fatalf("%s: %s", sql, e)
		}
	}
	env := &fuzzEnv{db: db}
	env.reserved = env.reservedObjects(f, tx)
	if err := errors.Join(tx.SetApplied(Position{Index: 1, Term: 1}), tx.Commit()); err != nil {
		f.Fatal(err)
	}
	return env
}

func resultError(r *sqlraftv1.RequestResult) string {
	if q := r.GetQuery(); q != nil {
		return q.GetError()
	}
	return r.GetExecute().GetError()
}

// inspect runs Inspect and checks that it fails only with an InvalidError.
func (e *fuzzEnv) inspect(t *testing.T, s *sqlraftv1.Statement) Kind {
	kinds, err := e.db.Inspect(context.Background(), []*sqlraftv1.Statement{s})
	if err != nil {
		checkInvalid(t, "Inspect", err)
		return -1
	}
	return kinds[0]
}

func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("%s: error %v (%T), want an *InvalidError", what, err, err)
	}
	if inv.Index != 0 || inv.Reason == "" || !utf8.ValidString(inv.Reason) {
		t.Fatalf("%s: bad InvalidError %+v", what, inv)
	}
}

// query runs the statement as a local read. kind is Inspect's verdict (-1
// when it refused the statement).
func (e *fuzzEnv) query(t *testing.T, s *sqlraftv1.Statement, kind Kind) {
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	res, _, err := e.db.Query(ctx, []*sqlraftv1.Statement{s})
	var inv *InvalidError
	switch {
	case err == nil:
		if len(res) != 1 {
			t.Fatalf("Query: %d results for one statement", len(res))
		}
		mustMarshal(t, "Query", res[0])
	case errors.As(err, &inv):
		checkInvalid(t, "Query", err)
	case errors.Is(err, ErrResultTooLarge) || errors.Is(err, context.DeadlineExceeded):
	default:
		t.Fatalf("Query: unexpected error %v (%T)", err, err)
	}
	if kind == Write && inv == nil {
		t.Fatalf("Inspect says the statement writes, Query ran it (error %v)", err)
	}
	if kind == ReadOnly && inv != nil {
		t.Fatalf("Inspect says the statement reads, Query refused it: %v", err)
	}
}

func mustMarshal(t *testing.T, what string, m proto.Message) {
	t.Helper()
	if _, err := proto.Marshal(m); err != nil {
		t.Fatalf("%s: result does not marshal: %v", what, err)
	}
}

// prepared checks a statement that validation accepted and SQLite prepared:
// SQLite must have read all of it, and see the parameters the scanner found
// (as many as the scanner counts, so none goes unbound).
func (e *fuzzEnv) prepared(t *testing.T, s *sqlraftv1.Statement) {
	err := e.db.withChecker(context.Background(), func(c *conn) error {
		c.guard.writer = true // as Inspect judges
		defer func() { c.guard.writer = false }()
		st, _, err := c.prepareClient(s.GetSql())
		if err != nil {
			t.Fatalf("Inspect prepared the statement, a second prepare failed: %v", err)
		}
		defer st.Close()
		if tail := reflect.ValueOf(st).Elem().FieldByName("t").String(); !scanPlaceholders(tail).blank {
			t.Fatalf("accepted as one statement, SQLite left %q unprepared", tail)
		}
		p := scanPlaceholders(s.GetSql())
		if want := p.positional + p.variables; st.NumInput() != want {
			t.Fatalf("SQLite sees %d parameters, the scanner %d (%+v)", st.NumInput(), want, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writerRead runs the statement on the writer as a STRONG read does, then
// commits: if it ran as a read, the WAL must not have grown.
func (e *fuzzEnv) writerRead(t *testing.T, s *sqlraftv1.Statement) {
	before := e.walSize(t)
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.SetLimits(fuzzLimits)
	r := tx.Run(s, true)
	mustMarshal(t, "Run (read)", r)
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after a read: %v", err)
	}
	if after := e.walSize(t); after != before && resultError(r) == "" {
		t.Fatalf("a statement run as a read changed the database (WAL %d -> %d bytes)", before, after)
	}
}

// fuzzLimits keep every input's work on the writer small.
var fuzzLimits = Limits{Steps: 1_000_000, Rows: 1000, Bytes: 1 << 20, ResultBytes: 1 << 20}

func (e *fuzzEnv) walSize(t *testing.T) int64 {
	fi, err := os.Stat(e.db.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writerWrite runs the statement on the writer as an entry does, checks
// that nothing entered the reserved namespace, and rolls back.
func (e *fuzzEnv) writerWrite(t *testing.T, s *sqlraftv1.Statement) {
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx.SetLimits(fuzzLimits)
	r := tx.Run(s, false)
	mustMarshal(t, "Run (write)", r)
	if tx.Aborted() {
		return
	}
	if n := e.reservedObjects(t, tx); n != e.reserved && resultError(r) == "" {
		t.Fatalf("a write changed the objects named %s%%: %d, were %d", metaPrefix, n, e.reserved)
	}
}

// reservedObjects counts the schema objects in sqlraft's reserved namespace.
func (e *fuzzEnv) reservedObjects(t testing.TB, tx *Tx) int {
	st, err := tx.c.prepared(`SELECT count(*) FROM sqlite_schema WHERE name LIKE '\_sqlraft%' ESCAPE '\'`)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = tx.c.internal(func() error {
		return stepRows(context.Background(), st, nil, func(v []driver.Value) error {
			n = v[0].(int64)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// fuzzParams builds a statement from sql and parameters decoded from b. Its
// first byte picks how parameters are given: 0 (or no byte) matches the
// placeholders the scanner finds (so most inputs bind), 1 gives a number of
// positional ones, 2 a number of named ones with names from b. Each value
// is a kind byte and its payload (see fuzzValue).
func fuzzParams(sql string, b []byte) *sqlraftv1.Statement {
	r := &fuzzReader{b: b}
	s := &sqlraftv1.Statement{Sql: sql}
	mode, n := r.byte()%3, int(r.byte()%5)
	switch mode {
	case 0:
		p := scanPlaceholders(sql)
		for range min(p.positional, 8) {
			s.Params = append(s.Params, r.value())
		}
		names := make([]string, 0, len(p.named))
		for name := range p.named {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if s.NamedParams == nil {
				s.NamedParams = map[string]*sqlraftv1.Value{}
			}
			s.NamedParams[[]string{"", ":", "@", "$"}[n%4]+name] = r.value()
		}
	case 1:
		for range n {
			s.Params = append(s.Params, r.value())
		}
	case 2:
		s.NamedParams = map[string]*sqlraftv1.Value{}
		for range n {
			name := strings.ToValidUTF8(string(r.take(int(r.byte()%8))), "\uFFFD")
			s.NamedParams[name] = r.value()
		}
	}
	return s
}

// fuzzReader hands out the bytes of a fuzz input, then zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) take(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzReader) uint64() uint64 {
	var b [8]byte
	copy(b[:], r.take(8))
	return binary.LittleEndian.Uint64(b[:])
}

// value decodes one parameter: a kind byte (null, integer, real, text,
// blob, text_bytes, or a Value with no kind) and its payload: 8 bytes for
// numbers, a length byte and the bytes for the others.
func (r *fuzzReader) value() *sqlraftv1.Value {
	switch r.byte() % 7 {
	case 0:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
	case 1:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: int64(r.uint64())}}
	case 2:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Real{Real: math.Float64frombits(r.uint64())}}
	case 3:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: strings.ToValidUTF8(string(r.take(int(r.byte()))), "\uFFFD")}}
	case 4:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: r.take(int(r.byte()))}}
	case 5:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: r.take(int(r.byte()))}}
	default:
		return &sqlraftv1.Value{}
	}
}
