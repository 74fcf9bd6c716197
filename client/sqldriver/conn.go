package sqldriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// ErrQueryInTx is returned by a Query inside a transaction. A transaction's
// statements are buffered and sent as one Request at Commit, so a read in
// the middle could not see the transaction's own writes, and reading
// outside it would silently break isolation. Run reads before Begin or
// after Commit, or send the statements with client.Request yourself.
var ErrQueryInTx = errors.New("sqldriver: Query inside a transaction is not supported: " +
	"the transaction's statements are sent together at Commit, so a read could not see its writes; read before Begin or after Commit")

// ErrResultPending is returned by a Result of an Exec inside a transaction
// before Commit: its rows affected and insert ID are known only then.
var ErrResultPending = errors.New("sqldriver: the result of a statement in a transaction is known after Commit")

// conn is one database/sql connection: settings and, while a transaction
// is open, its buffered statements. It holds no network connection of its
// own (the client's are shared).
type conn struct {
	client     *client.Client
	opts       ConnOptions
	tx         *tx
	ownsClient bool
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
)

// Prepare returns a statement; nothing is sent until it runs (sqlraft has
// no server-side prepared statements).
func (c *conn) Prepare(query string) (driver.Stmt, error) { return &stmt{conn: c, query: query}, nil }

// PrepareContext is Prepare.
func (c *conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return c.Prepare(query)
}

// Close discards an open transaction (database/sql rolls it back first).
func (c *conn) Close() error {
	c.tx = nil
	if c.ownsClient {
		return c.client.Close()
	}
	return nil
}

// Begin starts a transaction.
func (c *conn) Begin() (driver.Tx, error) { return c.BeginTx(context.Background(), driver.TxOptions{}) }

// BeginTx starts a transaction: later Execs are buffered until Commit.
// The statements commit as one Raft entry in one SQLite transaction, which
// is serializable; the default and serializable isolation levels are
// accepted, others and read-only transactions refused.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("sqldriver: a transaction is already open on this connection")
	}
	if iso := sql.IsolationLevel(opts.Isolation); iso != sql.LevelDefault && iso != sql.LevelSerializable {
		return nil, fmt.Errorf("sqldriver: isolation level %v is not supported (sqlraft transactions are serializable)", iso)
	}
	if opts.ReadOnly {
		return nil, errors.New("sqldriver: read-only transactions are not supported: reads cannot run inside a transaction (see ErrQueryInTx)")
	}
	c.tx = &tx{conn: c, ctx: ctx}
	return c.tx, nil
}

// ExecContext runs a write through Execute, or buffers it inside a
// transaction.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st, err := statement(query, args)
	if err != nil {
		return nil, err
	}
	if c.tx != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return c.tx.add(st), nil
	}
	stmts := []*sqlraftv1.Statement{st}
	resp, err := c.client.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts})
	if err == nil {
		err = client.ExecuteError(resp, stmts)
	}
	if err != nil {
		return nil, err
	}
	r := resp.GetResults()[0]
	return result{lastInsertID: r.GetLastInsertId(), rowsAffected: r.GetRowsAffected()}, nil
}

// QueryContext runs a read through Query at the connection's consistency.
// Inside a transaction it returns ErrQueryInTx.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.tx != nil {
		return nil, ErrQueryInTx
	}
	st, err := statement(query, args)
	if err != nil {
		return nil, err
	}
	req := &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st}, Consistency: c.opts.Consistency}
	if c.opts.Freshness > 0 {
		req.Freshness = durationpb.New(c.opts.Freshness)
	}
	resp, err := c.client.Query(ctx, req)
	if err == nil {
		err = client.QueryError(resp, req.Statements)
	}
	if err != nil {
		return nil, err
	}
	return newRows(resp.GetResults()[0]), nil
}

// Ping asks the node the client uses for its status.
func (c *conn) Ping(ctx context.Context) error {
	_, err := c.client.Status(ctx)
	return err
}

// CheckNamedValue accepts what client.ValueOf sends as is (integers of any
// size, bool, time.Time, ...) and leaves the rest (driver.Valuer, named
// types) to database/sql's default conversion.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if _, err := client.ValueOf(nv.Value); err != nil {
		return driver.ErrSkip
	}
	return nil
}

// statement builds a Statement from database/sql arguments: positional
// (for ? and ?NNN) or, when named with sql.Named, named (for :name, @name,
// $name), never both.
func statement(query string, args []driver.NamedValue) (*sqlraftv1.Statement, error) {
	st := &sqlraftv1.Statement{Sql: query}
	for _, a := range args {
		v, err := client.ValueOf(a.Value)
		if err != nil {
			return nil, fmt.Errorf("sqldriver: argument %d: %w", a.Ordinal, err)
		}
		if a.Name == "" {
			st.Params = append(st.Params, v)
			continue
		}
		if st.NamedParams == nil {
			st.NamedParams = map[string]*sqlraftv1.Value{}
		}
		st.NamedParams[a.Name] = v
	}
	if len(st.Params) > 0 && len(st.NamedParams) > 0 {
		return nil, errors.New("sqldriver: use either positional or named arguments in one statement, not both")
	}
	return st, nil
}

// result is the outcome of an Exec outside a transaction.
type result struct{ lastInsertID, rowsAffected int64 }

// LastInsertId implements driver.Result.
func (r result) LastInsertId() (int64, error) { return r.lastInsertID, nil }

// RowsAffected implements driver.Result.
func (r result) RowsAffected() (int64, error) { return r.rowsAffected, nil }

// stmt is a "prepared" statement: the SQL, sent again with every run.
type stmt struct {
	conn  *conn
	query string
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

// Close implements driver.Stmt.
func (s *stmt) Close() error { return nil }

// NumInput is -1: the server checks the parameter count.
func (s *stmt) NumInput() int { return -1 }

// Exec implements driver.Stmt (unused: database/sql calls ExecContext).
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

// Query implements driver.Stmt (unused: database/sql calls QueryContext).
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

// ExecContext runs the statement as conn.ExecContext does.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.query, args)
}

// QueryContext runs the statement as conn.QueryContext does.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.query, args)
}

// CheckNamedValue is the connection's.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error { return s.conn.CheckNamedValue(nv) }

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}
