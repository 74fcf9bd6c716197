package sqldriver_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
	"github.com/sqlraft/sqlraft/client/sqldriver"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func dsnOf(cl *servertest.Cluster, params string) string {
	var addrs []string
	for _, n := range cl.Nodes {
		addrs = append(addrs, n.GRPCAddr)
	}
	return sqldriver.Scheme + strings.Join(addrs, ",") + params
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), servertest.LeaderTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenByDSNExecQueryScan(t *testing.T) {
	cl := servertest.New(t, 3, servertest.Options{})
	db, err := sql.Open("sqlraft", dsnOf(cl, "?consistency=linearizable"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := testCtx(t)
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB,
		ok BOOLEAN, at DATETIME, note TEXT)`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 10, 30, 0, 123000000, time.UTC)
	res, err := db.ExecContext(ctx, "INSERT INTO t(name, score, data, ok, at, note) VALUES(?, ?, ?, ?, ?, ?)",
		"fiona", 9.5, []byte{1, 2, 3}, true, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := res.LastInsertId(); err != nil || id != 1 {
		t.Fatalf("LastInsertId = %d, %v", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("RowsAffected = %d, %v", n, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t(name, score) VALUES(:name, @score)",
		sql.Named("name", "gus"), sql.Named("score", int64(3))); err != nil {
		t.Fatal(err)
	}
	var (
		id    int
		name  string
		score float64
		data  []byte
		ok    bool
		when  time.Time
		note  sql.NullString
	)
	err = db.QueryRowContext(ctx, "SELECT id, name, score, data, ok, at, note FROM t WHERE name = ?", "fiona").
		Scan(&id, &name, &score, &data, &ok, &when, &note)
	if err != nil {
		t.Fatal(err)
	}
	if id != 1 || name != "fiona" || score != 9.5 || !bytes.Equal(data, []byte{1, 2, 3}) || !ok || !when.Equal(at) || note.Valid {
		t.Fatalf("scanned %v %q %v %v %v %v %v", id, name, score, data, ok, when, note)
	}
	rows, err := db.QueryContext(ctx, "SELECT name FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil || !slices.Equal(names, []string{"fiona", "gus"}) {
		t.Fatalf("names %v, %v", names, err)
	}
	// A SQL error names the statement; a bad request is the server's status.
	_, err = db.ExecContext(ctx, "INSERT INTO t(id, name) VALUES(1, 'dup')")
	var se *client.StatementError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "UNIQUE") {
		t.Fatalf("duplicate key: %v, want a *client.StatementError", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t(name) VALUES(?)", struct{}{}); err == nil {
		t.Fatal("an unsupported argument type was accepted")
	}
}

// requests records the methods a client calls.
type requests struct {
	mu      sync.Mutex
	methods []string
}

func (r *requests) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	r.mu.Lock()
	r.methods = append(r.methods, method[strings.LastIndex(method, "/")+1:])
	r.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (r *requests) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.methods
	r.methods = nil
	return out
}

func TestTransactions(t *testing.T) {
	cl := servertest.New(t, 3, servertest.Options{})
	rec := &requests{}
	c, err := client.New([]string{cl.Followers()[0].GRPCAddr}, client.WithDialOptions(grpc.WithChainUnaryInterceptor(rec.interceptor)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db := sql.OpenDB(sqldriver.NewConnector(c, sqldriver.ConnOptions{Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}))
	defer db.Close()
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE acct(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))"); err != nil {
		t.Fatal(err)
	}
	rec.take()

	// Committed: one Request carrying every statement.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := tx.ExecContext(ctx, "INSERT INTO acct(id, balance) VALUES(?, ?)", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO acct(id, balance) VALUES(?, ?)", 2, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.RowsAffected(); !errors.Is(err, sqldriver.ErrResultPending) {
		t.Fatalf("RowsAffected before Commit: %v, want ErrResultPending", err)
	}
	if _, err := tx.QueryContext(ctx, "SELECT balance FROM acct"); !errors.Is(err, sqldriver.ErrQueryInTx) {
		t.Fatalf("Query in a transaction: %v, want ErrQueryInTx", err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("sent %v before Commit, want nothing", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Equal(got, []string{"Request"}) {
		t.Fatalf("Commit sent %v, want one Request", got)
	}
	if n, err := r1.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("RowsAffected after Commit = %d, %v", n, err)
	}
	if id, err := r1.LastInsertId(); err != nil || id != 1 {
		t.Fatalf("LastInsertId after Commit = %d, %v", id, err)
	}

	// Rolled back: nothing sent, nothing written.
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE acct SET balance = 0"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("a rolled-back transaction sent %v", got)
	}

	checkFailedCommitUndoesAll(t, ctx, db)
}

// checkFailedCommitUndoesAll: a failing statement fails Commit and undoes
// the whole transaction; unsupported transaction options are refused.
func checkFailedCommitUndoesAll(t *testing.T, ctx context.Context, db *sql.DB) {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(ctx, "UPDATE acct SET balance = balance + 70 WHERE id = 2")
	tx.ExecContext(ctx, "UPDATE acct SET balance = balance - 70 WHERE id = 1")
	tx.ExecContext(ctx, "UPDATE acct SET balance = balance - 70 WHERE id = 1") // below zero: CHECK fails
	var se *client.StatementError
	if err := tx.Commit(); !errors.As(err, &se) || se.Index != 2 {
		t.Fatalf("Commit: %v, want a *client.StatementError for statement 2", err)
	}
	var total, one int64
	if err := db.QueryRowContext(ctx, "SELECT sum(balance), (SELECT balance FROM acct WHERE id = 1) FROM acct").Scan(&total, &one); err != nil {
		t.Fatal(err)
	}
	if total != 150 || one != 100 {
		t.Fatalf("after the rollbacks: total %d, account 1 %d; want 150 and 100", total, one)
	}
	if _, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}); err == nil {
		t.Fatal("a read-only transaction was accepted")
	}
	if _, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}); err == nil {
		t.Fatal("READ COMMITTED was accepted")
	}
}

func TestContextCancelled(t *testing.T) {
	cl := servertest.New(t, 1, servertest.Options{})
	db, err := sql.Open("sqlraft", dsnOf(cl, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t(x)"); err == nil {
		t.Fatal("Exec with a cancelled context succeeded")
	}
	// A transaction whose context ends is rolled back by database/sql.
	ctx, cancel = context.WithCancel(testCtx(t))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(ctx, "CREATE TABLE u(x)")
	cancel()
	if err := tx.Commit(); err == nil {
		t.Fatal("Commit after the context ended succeeded")
	}
	var n int
	if err := db.QueryRowContext(testCtx(t), "SELECT count(*) FROM sqlite_master WHERE name = 'u'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table u: %d, %v; want none", n, err)
	}
}

func TestParseDSN(t *testing.T) {
	cfg, err := sqldriver.ParseDSN("sqlraft://a:1, b:2/?consistency=none&freshness=2s&user=u&password=p%26w&tls=true&ca=/ca.pem" +
		"&server_name=db&no_forward=true&retry_unknown_outcome=1&max_message_size=1024")
	if err != nil {
		t.Fatal(err)
	}
	want := sqldriver.Config{Addrs: []string{"a:1", "b:2"}, Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE,
		Freshness: 2 * time.Second, User: "u", Password: "p&w", TLS: true, CAFile: "/ca.pem", ServerName: "db",
		NoForward: true, RetryUnknownOutcome: true, MaxMessageSize: 1024}
	if !slices.Equal(cfg.Addrs, want.Addrs) {
		t.Fatalf("addrs %v", cfg.Addrs)
	}
	cfg.Addrs, want.Addrs = nil, nil
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("ParseDSN = %+v, want %+v", *cfg, want)
	}
	for _, bad := range []string{
		"postgres://a:1", "sqlraft://", "sqlraft://a:1?consistency=eventual", "sqlraft://a:1?colour=blue",
		"sqlraft://a:1?user=u&token=t", "sqlraft://a:1?cert=c.pem", "sqlraft://a:1?tls=maybe", "sqlraft://a:1?freshness=soon",
	} {
		if _, err := sqldriver.ParseDSN(bad); err == nil {
			t.Errorf("ParseDSN(%q) did not fail", bad)
		}
	}
	if _, err := sqldriver.ParseDSN("mysql://u:secret@x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error for a foreign DSN: %v (must not quote it)", err)
	}
}
