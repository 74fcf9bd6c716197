package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// InvalidError is a client mistake in one statement, found before anything
// ran: bad parameters, a syntax error, a refused operation, or a write sent
// as a read.
type InvalidError struct {
	Index  int // zero-based position of the statement in the request
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("statement %d: %s", e.Index, e.Reason)
}

// ErrResultTooLarge is returned when a query's rows exceed Options.MaxResultBytes.
var ErrResultTooLarge = errors.New("result too large; narrow the query or use QueryStream")

// Kind says whether a statement reads or writes.
type Kind int

// Statement kinds reported by Inspect.
const (
	// Unknown: SQLite could not prepare it against the current schema (a
	// table an earlier statement creates, say); it is judged when it runs.
	Unknown Kind = iota
	ReadOnly
	Write
)

// Inspect validates statements without running them and reports their
// kinds. Parameters must match the placeholders; SQL must parse. Each
// distinct text is judged and prepared once (the checker connection keeps
// it prepared for later requests); the parameters of every statement are
// checked.
func (db *DB) Inspect(ctx context.Context, stmts []*sqlraftv1.Statement) ([]Kind, error) {
	kinds := make([]Kind, len(stmts))
	err := db.withChecker(ctx, func(c *conn) error {
		c.guard.writer = true // judge as the writer will
		defer func() { c.guard.writer = false }()
		for i, s := range stmts {
			st, _, err := c.client(s)
			if err != nil {
				if invalid, ok := err.(*InvalidError); ok {
					invalid.Index = i
					return invalid
				}
				continue
			}
			kinds[i] = Write
			if st.readOnly {
				kinds[i] = ReadOnly
			}
		}
		return nil
	})
	return kinds, err
}

// renameIntoMeta matches ALTER TABLE ... RENAME TO a name in sqlraft's
// reserved prefix, which the authorizer cannot see (it is told the old name).
// Comments may stand between the words, as white space may.
var renameIntoMeta = regexp.MustCompile(`(?is)\bRENAME` + sqlGap + `TO` + sqlGap + `["'\[\x60]?` + metaPrefix)

// sqlGap matches what may separate two SQL words: white space and comments.
const sqlGap = `(?:\s|/\*.*?\*/|--[^\n]*\n)+`

// sqlText is what sqlraft learns from a statement's text alone, before
// SQLite sees it: its placeholders, or why the text is refused.
type sqlText struct {
	ph  placeholders
	err error
}

// inspectText judges SQL text: a NUL byte, a rename into sqlraft's
// reserved names, no statement or several, and placeholders the driver
// cannot bind are refused.
func inspectText(sql string) sqlText {
	if strings.IndexByte(sql, 0) >= 0 {
		// SQLite reads a statement up to its first NUL and ignores the rest.
		return sqlText{err: fmt.Errorf("SQL holds a NUL byte")}
	}
	if mayRename(sql) && renameIntoMeta.MatchString(sql) {
		return sqlText{err: errors.New(reservedRefusal)}
	}
	t := sqlText{ph: scanPlaceholders(sql)}
	t.err = t.ph.textError()
	return t
}

// mayRename reports whether sql holds the word RENAME in any case, so that
// the regular expression runs only on the few statements that can match it.
func mayRename(sql string) bool {
	for i := 0; i+6 <= len(sql); i++ {
		if sql[i]|0x20 == 'r' && strings.EqualFold(sql[i:i+6], "RENAME") {
			return true
		}
	}
	return false
}

// checkArgs checks a statement's parameters against its text's
// placeholders, and that each value can be bound, and returns the values
// as the driver binds them.
func (t *sqlText) checkArgs(s *sqlraftv1.Statement) ([]driver.NamedValue, error) {
	names := make([]string, 0, len(s.GetNamedParams()))
	for _, k := range sortedKeys(s) {
		names = append(names, paramName(k))
	}
	if err := t.ph.argsError(len(s.GetParams()), names); err != nil {
		return nil, err
	}
	return bindArgs(s)
}

// invalidReason says why a prepare error is the client's fault, or "" when
// it depends on the database's content (no such table, and so on).
func invalidReason(denied string, err error) string {
	if denied != "" {
		return denied
	}
	msg := err.Error()
	for _, s := range []string{"syntax error", "incomplete input", "unrecognized token"} {
		if strings.Contains(msg, s) {
			return msg
		}
	}
	return ""
}

// Query runs read-only statements on a read connection and returns one
// result per statement with the Raft position the data reflects (at least:
// a write applied while the read starts may be in it too). Several
// statements run inside one read transaction, so that they see the same
// data; one runs on its own, as SQLite makes every statement consistent by
// itself. A write statement makes the whole call fail with *InvalidError
// before anything runs.
func (db *DB) Query(ctx context.Context, stmts []*sqlraftv1.Statement) ([]*sqlraftv1.QueryResult, Position, error) {
	var results []*sqlraftv1.QueryResult
	var pos Position
	err := db.withReader(ctx, func(c *conn) error {
		run := func() error {
			pos = db.appliedPosition() // before the first read starts the data's snapshot
			var err error
			results, err = db.queryAll(ctx, c, stmts)
			return err
		}
		if len(stmts) == 1 {
			return run()
		}
		return readTx(ctx, c, run)
	})
	return results, pos, err
}

// queryAll checks that every statement only reads, then runs them in turn.
// Statements are taken from the connection's cache twice (a request with
// more distinct texts than the cache holds prepares some of them again), so
// that none is held across the preparation of another.
func (db *DB) queryAll(ctx context.Context, c *conn, stmts []*sqlraftv1.Statement) ([]*sqlraftv1.QueryResult, error) {
	prepErr := make([]error, len(stmts))
	for i, s := range stmts {
		st, _, err := c.client(s)
		if err != nil {
			if invalid, ok := err.(*InvalidError); ok {
				invalid.Index = i
				return nil, invalid
			}
			prepErr[i] = err
			continue
		}
		if !st.readOnly {
			return nil, &InvalidError{Index: i, Reason: "is not read-only; send writes with Execute or Request"}
		}
	}
	results := make([]*sqlraftv1.QueryResult, len(stmts))
	budget := db.opts.MaxResultBytes
	for i, s := range stmts {
		if prepErr[i] != nil {
			results[i] = &sqlraftv1.QueryResult{Error: prepErr[i].Error()}
			continue
		}
		st, args, err := c.client(s)
		if err != nil { // evicted, and the schema changed since: as if it failed the first time
			results[i] = &sqlraftv1.QueryResult{Error: err.Error()}
			continue
		}
		res, used, err := runQuery(ctx, st.SQLiteStmt, args, budget)
		st.release()
		if err != nil {
			return nil, err
		}
		budget -= used
		results[i] = res
	}
	return results, nil
}

// runQuery runs a prepared read statement and collects its rows. SQL errors
// go into the result; context errors and ErrResultTooLarge are returned.
func runQuery(ctx context.Context, st *sqlite3.SQLiteStmt, args []driver.NamedValue, budget int) (*sqlraftv1.QueryResult, int, error) {
	res := &sqlraftv1.QueryResult{}
	used := 0
	err := streamRows(ctx, st, args, func(cols, types []string) error {
		res.Columns, res.Types = cols, types
		return nil
	}, func(row []driver.Value) error {
		r := &sqlraftv1.Row{Values: make([]*sqlraftv1.Value, len(row))}
		used += rowOverhead
		for j, v := range row {
			r.Values[j] = FromDriver(v)
			used += approxSize(v)
		}
		if budget > 0 && used > budget {
			return ErrResultTooLarge
		}
		res.Rows = append(res.Rows, r)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrResultTooLarge) {
			return nil, used, err
		}
		return &sqlraftv1.QueryResult{Error: errorText(err)}, used, nil
	}
	return res, used, nil
}

// streamRows binds and runs st, reports the columns and their types once the
// first row (or the end) is known, then calls row for each row.
func streamRows(ctx context.Context, st *sqlite3.SQLiteStmt, args []driver.NamedValue,
	header func(cols, types []string) error, row func([]driver.Value) error) error {
	dr, err := st.QueryContext(ctx, args)
	if err != nil {
		return err
	}
	rows := dr.(*sqlite3.SQLiteRows)
	defer rows.Close()
	cols := rows.Columns()
	decl := neutralizeDeclTypes(rows.DeclTypes())
	dest := make([]driver.Value, len(cols))
	first := true
	for {
		err := rows.Next(dest)
		if err != nil && err != io.EOF {
			return err
		}
		if first {
			first = false
			types := make([]string, len(cols))
			for i := range cols {
				types[i] = strings.ToLower(decl[i])
				if types[i] == "" && err == nil {
					types[i] = storageClass(dest[i])
				}
			}
			if herr := header(cols, types); herr != nil {
				return herr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err := row(dest); err != nil {
			return err
		}
	}
}

// readTx runs fn inside a read transaction on c, so that every statement
// sees the same snapshot of the database.
func readTx(ctx context.Context, c *conn, fn func() error) error {
	if err := c.execPrepared(ctx, "BEGIN"); err != nil {
		return err
	}
	err := fn()
	return errors.Join(err, c.execPrepared(context.Background(), "ROLLBACK"))
}

// execPrepared runs one of sqlraft's own statements, prepared once.
func (c *conn) execPrepared(ctx context.Context, sql string, args ...driver.NamedValue) error {
	st, err := c.prepared(sql)
	if err != nil {
		return err
	}
	return c.internal(func() error {
		_, err := st.ExecContext(ctx, args)
		return err
	})
}

// QueryStream runs one read-only statement and hands its rows to send in
// batches of batchSize; the first call carries the columns and types.
func (db *DB) QueryStream(ctx context.Context, s *sqlraftv1.Statement, batchSize int,
	send func(pos Position, cols, types []string, rows []*sqlraftv1.Row) error) error {
	return db.withStreamConn(ctx, func(ctx context.Context, c *conn) error {
		return readTx(ctx, c, func() error {
			pos, err := readApplied(ctx, c)
			if err != nil {
				return err
			}
			st, args, err := c.client(s) // the connection is the stream's own: its cache goes with it
			if err != nil {
				return err
			}
			defer st.release()
			if !st.readOnly {
				return &InvalidError{Reason: "is not read-only; send writes with Execute or Request"}
			}
			return streamBatches(ctx, st.SQLiteStmt, args, batchLimits{rows: batchSize, bytes: db.opts.MaxResultBytes}, pos, send)
		})
	})
}

// batchLimits bound one QueryStream message: rows, and approximate bytes,
// so that every message fits the node's message size limit.
type batchLimits struct{ rows, bytes int }

func streamBatches(ctx context.Context, st *sqlite3.SQLiteStmt, args []driver.NamedValue, limits batchLimits, pos Position,
	send func(pos Position, cols, types []string, rows []*sqlraftv1.Row) error) error {
	var cols, types []string
	var batch []*sqlraftv1.Row
	sent, size := false, 0
	flush := func() error {
		err := send(pos, cols, types, batch)
		cols, types, batch, sent, size = nil, nil, nil, true, 0
		return err
	}
	err := streamRows(ctx, st, args, func(c, t []string) error {
		cols, types = c, t
		return nil
	}, func(row []driver.Value) error {
		r := &sqlraftv1.Row{Values: make([]*sqlraftv1.Value, len(row))}
		rowSize := rowOverhead
		for j, v := range row {
			r.Values[j] = FromDriver(v)
			rowSize += approxSize(v)
		}
		if limits.bytes > 0 && rowSize > limits.bytes {
			return ErrResultTooLarge
		}
		if limits.bytes > 0 && size+rowSize > limits.bytes && len(batch) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, size = append(batch, r), size+rowSize
		if len(batch) >= limits.rows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 || !sent {
		return flush()
	}
	return nil
}
