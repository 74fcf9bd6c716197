package sqlitedb

import (
	"database/sql/driver"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// stmtCacheSize bounds the client statements each connection keeps
// prepared. Applications send a handful of distinct statement texts over
// and over; a bulk request sends one text a thousand times.
const stmtCacheSize = 128

// clientStmt is a client's SQL text prepared on one connection, with what
// sqlraft learned from the text itself. It is kept in the connection's
// cache and used again by later statements with the same text: SQLite
// prepares it again by itself, authorizer included, when the schema
// changes.
type clientStmt struct {
	*sqlite3.SQLiteStmt
	handle   unsafe.Pointer // the sqlite3_stmt*, for releaseStmt
	text     sqlText
	readOnly bool
}

// release readies the statement for its next use; call it when done with
// one use of it.
func (s *clientStmt) release() { releaseStmt(s.handle) }

// stmtCache is one connection's prepared client statements, least recently
// used first out. Only the goroutine holding the connection uses it.
type stmtCache struct {
	lru *lru.LRU[string, *clientStmt]
}

func newStmtCache() *stmtCache {
	l, err := lru.NewLRU[string, *clientStmt](stmtCacheSize, func(_ string, s *clientStmt) { s.Close() })
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &stmtCache{lru: l}
}

// purge finalizes every cached statement.
func (c *stmtCache) purge() { c.lru.Purge() }

// client returns s's SQL prepared on c, checked against s: the text is
// judged (NUL bytes, reserved names, placeholders) and prepared once per
// connection, the parameters of every statement, which are returned as the
// driver binds them. The error is an
// *InvalidError (with Index unset) when the statement is the client's
// mistake; any other error comes from SQLite and depends on the database's
// content (no such table, say). A statement evicted from the cache is
// finalized, so use the result before asking for another statement.
func (c *conn) client(s *sqlraftv1.Statement) (*clientStmt, []driver.NamedValue, error) {
	sql := s.GetSql()
	cs, ok := c.cache.lru.Get(sql)
	if ok {
		args, err := cs.text.checkArgs(s)
		if err != nil {
			return nil, nil, &InvalidError{Reason: err.Error()}
		}
		return cs, args, nil
	}
	text := inspectText(sql)
	if text.err != nil {
		return nil, nil, &InvalidError{Reason: text.err.Error()}
	}
	args, err := text.checkArgs(s)
	if err != nil {
		return nil, nil, &InvalidError{Reason: err.Error()}
	}
	st, denied, err := c.prepareClient(sql)
	if err != nil {
		if reason := invalidReason(denied, err); reason != "" {
			return nil, nil, &InvalidError{Reason: reason}
		}
		return nil, nil, err
	}
	cs = &clientStmt{SQLiteStmt: st, handle: stmtHandle(st), text: text, readOnly: st.Readonly()}
	c.cache.lru.Add(sql, cs)
	return cs, args, nil
}
