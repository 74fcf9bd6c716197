package sqlitedb

import (
	"strings"

	"github.com/mattn/go-sqlite3"
)

// metaPrefix marks sqlraft's own tables, which client SQL may not touch.
const metaPrefix = "_sqlraft"

// pragmaWritable are the pragmas client SQL may set on the writer. Everything
// else that configures the connection or the file (journal_mode, synchronous,
// wal_autocheckpoint, query_only, writable_schema, ...) belongs to sqlraft.
var pragmaWritable = map[string]bool{
	"foreign_keys": true, "user_version": true, "application_id": true, "recursive_triggers": true,
	"defer_foreign_keys": true, "ignore_check_constraints": true, "case_sensitive_like": true,
	"optimize": true, "incremental_vacuum": true, "analysis_limit": true,
}

// pragmaNever may not run at all from client SQL, not even to read.
var pragmaNever = map[string]bool{"wal_checkpoint": true}

// guard is a connection's SQLite authorizer. It refuses statements that would
// break sqlraft's control of the file and records why, so the caller can turn
// SQLite's bare "not authorized" into a useful message.
type guard struct {
	writer   bool
	internal bool   // set while sqlraft runs its own statements
	denied   string // reason for the last refusal
}

func (g *guard) authorize(op int, arg1, arg2, _ string) int {
	if g.internal {
		return sqlite3.SQLITE_OK
	}
	if reason := g.reason(op, arg1, arg2); reason != "" {
		g.denied = reason
		return sqlite3.SQLITE_DENY
	}
	return sqlite3.SQLITE_OK
}

func (g *guard) reason(op int, arg1, arg2 string) string {
	switch op {
	case sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT:
		return "transaction control statements are not allowed; set the request's transaction field instead"
	case sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH:
		return "ATTACH and DETACH are not allowed"
	case sqlite3.SQLITE_PRAGMA:
		name := strings.ToLower(arg1)
		if pragmaNever[name] {
			return "PRAGMA " + name + " is managed by sqlraft"
		}
		if arg2 != "" && (!g.writer || !pragmaWritable[name]) {
			return "PRAGMA " + name + " cannot be set through sqlraft"
		}
	case sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE,
		sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_DROP_TABLE:
		if isMeta(arg1) {
			return "table " + arg1 + " is internal to sqlraft"
		}
	case sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_DROP_INDEX,
		sqlite3.SQLITE_CREATE_TRIGGER, sqlite3.SQLITE_DROP_TRIGGER:
		if isMeta(arg2) {
			return "table " + arg2 + " is internal to sqlraft"
		}
	}
	return ""
}

func isMeta(table string) bool {
	return strings.HasPrefix(strings.ToLower(table), metaPrefix)
}

// take returns and clears the last refusal's reason.
func (g *guard) take() string {
	r := g.denied
	g.denied = ""
	return r
}
