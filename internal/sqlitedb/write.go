package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// Tx is a write transaction on the writer connection. Only one goroutine
// (the Raft FSM) writes, so at most one Tx is open at a time.
type Tx struct {
	db *DB
	c  *conn
	// failure is the first error of this transaction that came from the
	// machine rather than from the SQL (see Failure).
	failure error
	// applied is the position SetApplied recorded, published at Commit.
	applied *Position
}

// Begin opens a write transaction. The DB cannot be closed or replaced
// until the Tx ends with Commit or Rollback.
func (db *DB) Begin() (*Tx, error) {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, ErrClosed
	}
	db.writeMu.Lock()
	tx := &Tx{db: db, c: db.writer}
	tx.c.budget.reset(Limits{}) // no limits until SetLimits
	if err := db.applyMaxPages(); err != nil {
		db.writeMu.Unlock()
		db.mu.RUnlock()
		return nil, err
	}
	if err := tx.c.execPrepared(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		db.writeMu.Unlock()
		db.mu.RUnlock()
		return nil, err
	}
	return tx, nil
}

// SetMaxPages caps the database file at n pages from the next write
// transaction on (0 lifts the cap): a write that needs more fails with
// SQLITE_FULL, exactly as on a full disk. Tests of full-disk handling use
// it; a daemon never does (the cap would be the same on every replica, and
// the entries it stopped would be retried forever).
func (db *DB) SetMaxPages(n int64) { db.maxPages.Store(n) }

// applyMaxPages gives the writer the cap SetMaxPages asked for.
func (db *DB) applyMaxPages() error {
	n := db.maxPages.Load()
	if n == db.writerMaxPages {
		return nil
	}
	pages := n
	if pages == 0 {
		pages = 0xfffffffe // SQLite's largest
	}
	err := db.writer.internal(func() error {
		_, err := db.writer.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages), nil)
		return err
	})
	if err == nil {
		db.writerMaxPages = n
	}
	return err
}

func (tx *Tx) internalExec(sql string, args ...driver.NamedValue) error {
	return tx.note(tx.c.execPrepared(context.Background(), sql, args...))
}

// Failure returns the first error this transaction met that came from the
// machine — a full disk, an I/O error, memory, a file that cannot be opened
// or written, a busy lock — rather than from the SQL. The same statements may
// well succeed on another replica, or here later, so a transaction that met
// one must not be committed as the outcome of a Raft entry: the entry must be
// applied again, not recorded as failed.
func (tx *Tx) Failure() error { return tx.failure }

// note records err as the transaction's failure when it came from the
// machine, and returns it.
func (tx *Tx) note(err error) error {
	if tx.failure == nil && environmental(err) {
		tx.failure = err
	}
	return err
}

// environmental reports whether err is a SQLite error caused by the
// machine rather than by the SQL it ran.
func environmental(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrNomem, sqlite3.ErrCantOpen, sqlite3.ErrReadonly,
		sqlite3.ErrCorrupt, sqlite3.ErrNotADB, sqlite3.ErrProtocol, sqlite3.ErrBusy, sqlite3.ErrLocked:
		return true
	}
	return false
}

// Commit commits and ends the transaction. If COMMIT fails, the
// transaction is rolled back, so the writer is never left inside one.
func (tx *Tx) Commit() error {
	defer tx.db.mu.RUnlock()
	defer tx.db.writeMu.Unlock()
	if tx.c.AutoCommit() {
		return errors.New("transaction was rolled back by SQLite before commit")
	}
	err := tx.internalExec("COMMIT")
	if err != nil && !tx.c.AutoCommit() {
		err = errors.Join(err, tx.internalExec("ROLLBACK"))
	}
	if err == nil && tx.applied != nil {
		tx.db.applied.Store(tx.applied)
	}
	return err
}

// Rollback abandons the transaction.
func (tx *Tx) Rollback() error {
	defer tx.db.mu.RUnlock()
	defer tx.db.writeMu.Unlock()
	if tx.c.AutoCommit() {
		return nil
	}
	return tx.internalExec("ROLLBACK")
}

// Aborted reports whether SQLite has rolled the whole transaction back on
// its own (after an I/O or out-of-memory error, for instance).
func (tx *Tx) Aborted() bool { return tx.c.AutoCommit() }

// Savepoint starts a nested transaction named name.
func (tx *Tx) Savepoint(name string) error { return tx.internalExec("SAVEPOINT " + name) }

// Release ends savepoint name, keeping its changes.
func (tx *Tx) Release(name string) error { return tx.internalExec("RELEASE " + name) }

// RollbackTo undoes everything since savepoint name and ends it.
func (tx *Tx) RollbackTo(name string) error {
	if err := tx.internalExec("ROLLBACK TO " + name); err != nil {
		return err
	}
	return tx.Release(name)
}

// SetClock fixes 'now' and the random seed for the statements that follow.
func (tx *Tx) SetClock(now time.Time, seed uint64) { tx.db.clock.Set(now, seed) }

// SetLimits starts a new allowance for the client statements that follow
// (one Raft entry's): they share it, and once a statement exceeds it, SQLite
// stops that statement and the later ones do not run.
func (tx *Tx) SetLimits(l Limits) { tx.c.budget.reset(l) }

// SetApplied records the Raft position the transaction's content reflects.
func (tx *Tx) SetApplied(p Position) error {
	err := tx.internalExec("INSERT OR REPLACE INTO _sqlraft_applied(id, raft_index, raft_term) VALUES(0, ?, ?)",
		driver.NamedValue{Ordinal: 1, Value: int64(p.Index)}, driver.NamedValue{Ordinal: 2, Value: int64(p.Term)})
	if err == nil {
		tx.applied = &p
	}
	return err
}

// AppliedPosition is the position SetApplied last recorded in this
// transaction, if any.
func (tx *Tx) AppliedPosition() (Position, bool) {
	if tx.applied == nil {
		return Position{}, false
	}
	return *tx.applied, true
}

// SetNode records a node's client address.
func (tx *Tx) SetNode(id, grpcAddr string) error {
	return tx.internalExec("INSERT OR REPLACE INTO _sqlraft_nodes(id, grpc_address) VALUES(?, ?)",
		driver.NamedValue{Ordinal: 1, Value: id}, driver.NamedValue{Ordinal: 2, Value: grpcAddr})
}

// RemoveNode forgets a node's client address.
func (tx *Tx) RemoveNode(id string) error {
	return tx.internalExec("DELETE FROM _sqlraft_nodes WHERE id = ?", driver.NamedValue{Ordinal: 1, Value: id})
}

// Run executes one client statement: a read returns rows, a write returns
// its effect. A SQL error is reported in the result, not returned. With
// readOnly set, a statement that would write is refused.
func (tx *Tx) Run(s *sqlraftv1.Statement, readOnly bool) *sqlraftv1.RequestResult {
	if err := tx.c.budget.exceeded(); err != nil {
		return failed(fmt.Errorf("not executed: %w", err))
	}
	st, args, err := tx.c.client(s)
	if err != nil {
		var invalid *InvalidError
		if errors.As(err, &invalid) {
			return failed(errors.New(invalid.Reason))
		}
		tx.note(err)
		return failed(err)
	}
	defer st.release()
	if readOnly && !st.readOnly {
		return failed(errors.New("is not read-only; send writes with Execute or Request"))
	}
	tx.c.budget.arm()
	defer tx.c.budget.disarm()
	if st.readOnly {
		return tx.runRead(st, args)
	}
	res := tx.execPrepared(st.SQLiteStmt, args)
	if berr := tx.c.budget.exceeded(); berr != nil {
		res = &sqlraftv1.ExecuteResult{Error: berr.Error()}
	}
	return &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Execute{Execute: res}}
}

// failed is the result of a statement that did not run, or failed.
func failed(err error) *sqlraftv1.RequestResult {
	return &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Execute{
		Execute: &sqlraftv1.ExecuteResult{Error: errorText(err)}}}
}

// runRead runs a read statement of a write request. The same bound holds on
// every replica, so a read too large for it fails the same way everywhere.
func (tx *Tx) runRead(st *clientStmt, args []driver.NamedValue) *sqlraftv1.RequestResult {
	limit := tx.db.opts.MaxResultBytes
	if rb := tx.c.budget.limits.ResultBytes; rb > 0 && rb < 1<<40 {
		limit = int(rb)
	}
	res, _, err := runQuery(context.Background(), st.SQLiteStmt, args, limit)
	tx.note(err)
	if berr := tx.c.budget.exceeded(); berr != nil {
		return failed(berr)
	}
	if err != nil {
		return failed(err)
	}
	return &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Query{Query: res}}
}

// execPrepared runs a write. SQLite's changes() and last_insert_rowid()
// keep their values across statements that change nothing (DDL, say), so
// the result reports them only when this statement did change rows, as
// total_changes() tells; the counters are read from the connection
// directly, not by a query.
func (tx *Tx) execPrepared(st *sqlite3.SQLiteStmt, args []driver.NamedValue) *sqlraftv1.ExecuteResult {
	before, beforeID := changeCounters(tx.c.handle)
	r, err := st.ExecContext(context.Background(), args)
	if err != nil {
		tx.note(err)
		return &sqlraftv1.ExecuteResult{Error: errorText(err)}
	}
	after, afterID := changeCounters(tx.c.handle)
	if after == before {
		return &sqlraftv1.ExecuteResult{}
	}
	res := &sqlraftv1.ExecuteResult{}
	res.RowsAffected, _ = r.RowsAffected()
	if afterID != beforeID {
		res.LastInsertId = afterID
	}
	return res
}

// String describes the Tx for logs.
func (tx *Tx) String() string { return fmt.Sprintf("sqlitedb.Tx(%s)", tx.db.path) }
