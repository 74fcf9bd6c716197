package sqldriver

import (
	"context"
	"database/sql/driver"
	"errors"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// tx buffers a transaction's statements; Commit sends them as one Request
// with transaction set, so they apply all together or not at all.
type tx struct {
	conn    *conn
	ctx     context.Context // BeginTx's: database/sql's Commit has none of its own
	stmts   []*sqlraftv1.Statement
	results []*sqlraftv1.RequestResult // filled by a successful Commit
	done    bool
}

// add buffers a statement and returns its result, known after Commit.
func (t *tx) add(st *sqlraftv1.Statement) driver.Result {
	t.stmts = append(t.stmts, st)
	return &txResult{tx: t, index: len(t.stmts) - 1}
}

// Commit sends the buffered statements as one transactional Request. A
// statement's SQL error rolls the whole request back and is returned as a
// *client.StatementError. Like any write, the Request is not repeated when
// its outcome is unknown (unless the DSN says retry_unknown_outcome).
func (t *tx) Commit() error {
	if t.done {
		return errors.New("sqldriver: transaction already ended")
	}
	t.done, t.conn.tx = true, nil
	if len(t.stmts) == 0 {
		return nil
	}
	resp, err := t.conn.client.Request(t.ctx, &sqlraftv1.RequestRequest{Statements: t.stmts, Transaction: true})
	if err == nil {
		err = client.RequestError(resp, t.stmts)
	}
	if err != nil {
		return err
	}
	t.results = resp.GetResults()
	return nil
}

// Rollback discards the buffered statements; nothing was sent.
func (t *tx) Rollback() error {
	if t.done {
		return errors.New("sqldriver: transaction already ended")
	}
	t.done, t.conn.tx, t.stmts = true, nil, nil
	return nil
}

// txResult is the result of one buffered statement.
type txResult struct {
	tx    *tx
	index int
}

func (r *txResult) get() (*sqlraftv1.ExecuteResult, error) {
	if r.tx.results == nil {
		return nil, ErrResultPending
	}
	return r.tx.results[r.index].GetExecute(), nil
}

// LastInsertId is known after a successful Commit (ErrResultPending before).
func (r *txResult) LastInsertId() (int64, error) {
	res, err := r.get()
	return res.GetLastInsertId(), err
}

// RowsAffected is known after a successful Commit (ErrResultPending before).
func (r *txResult) RowsAffected() (int64, error) {
	res, err := r.get()
	return res.GetRowsAffected(), err
}
