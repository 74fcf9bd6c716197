package sqlitedb

import (
	"errors"
	"reflect"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// metaPrefix marks sqlraft's own tables, which client SQL may not touch.
const metaPrefix = "_sqlraft"

// pragmaWritable are the pragmas client SQL may set (on the writer): only
// values stored in the database file. A pragma that sets connection state
// (foreign_keys, recursive_triggers, ignore_check_constraints, ...) would
// hold on one replica's writer connection and be lost at its next restart
// or snapshot install, while the entries that depend on it are not replayed:
// replicas would diverge. Everything that configures the file (journal_mode,
// synchronous, wal_autocheckpoint, writable_schema, ...) belongs to sqlraft.
var pragmaWritable = map[string]bool{"user_version": true, "application_id": true}

// pragmaLookup are pragmas that take an argument only to say what to
// describe; they change nothing.
var pragmaLookup = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true, "integrity_check": true,
	"quick_check": true,
}

// writerFunctions are SQL functions refused on the writer: their value
// depends on the connection's history, which differs between replicas (it
// depends on how entries were batched and when the node last restarted).
var writerFunctions = map[string]bool{"total_changes": true}

// pragmaNever may not run at all from client SQL, not even to read.
var pragmaNever = map[string]bool{"wal_checkpoint": true}

// TEMP objects live on one connection of one replica: lost on restart,
// never replicated, and a TEMP trigger would run inside sqlraft's own
// statements. So nothing may be created in, or written to, the temp schema.
const tempRefusal = "TEMP tables, views, indexes and triggers are not allowed: they would not be replicated"

// reservedRefusal refuses a client object named in sqlraft's namespace:
// the checksum leaves such names out, so replicas could differ in it
// unnoticed.
const reservedRefusal = "names starting with " + metaPrefix + " are reserved for sqlraft's own tables"

// readOnlyOp are authorizer actions that change nothing.
var readOnlyOp = map[int]bool{sqlite3.SQLITE_READ: true, sqlite3.SQLITE_SELECT: true, sqlite3.SQLITE_FUNCTION: true,
	sqlite3.SQLITE_TRANSACTION: true, sqlite3.SQLITE_SAVEPOINT: true}

// guard is a connection's SQLite authorizer. It refuses statements that would
// break sqlraft's control of the file and records why, so the caller can turn
// SQLite's bare "not authorized" into a useful message.
type guard struct {
	writer   bool
	internal bool   // set while sqlraft runs its own statements
	denied   string // reason for the last refusal
}

func (g *guard) authorize(op int, arg1, arg2, dbName string) int {
	if g.internal {
		return sqlite3.SQLITE_OK
	}
	reason := g.reason(op, arg1, arg2)
	if reason == "" && strings.EqualFold(dbName, "temp") && !readOnlyOp[op] && !tempSchemaRewrite(op, arg1) {
		reason = tempRefusal
	}
	if reason != "" {
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
	case sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
		sqlite3.SQLITE_CREATE_TEMP_VIEW:
		return tempRefusal
	case sqlite3.SQLITE_FUNCTION:
		if g.writer && writerFunctions[strings.ToLower(arg2)] {
			return arg2 + "() is not allowed in writes: its value differs between replicas"
		}
	case sqlite3.SQLITE_PRAGMA:
		name := strings.ToLower(arg1)
		if pragmaNever[name] {
			return "PRAGMA " + name + " is managed by sqlraft"
		}
		if arg2 != "" && !pragmaLookup[name] && (!g.writer || !pragmaWritable[name]) {
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
		if (op == sqlite3.SQLITE_CREATE_INDEX || op == sqlite3.SQLITE_CREATE_TRIGGER) && isMeta(arg1) {
			return reservedRefusal
		}
	case sqlite3.SQLITE_CREATE_VIEW, sqlite3.SQLITE_CREATE_VTABLE:
		if isMeta(arg1) {
			return reservedRefusal
		}
	}
	return ""
}

// tempSchemaRewrite reports whether op is ALTER TABLE ... RENAME updating
// the temp schema's table of objects, as it does in every schema to rewrite
// the objects that refer to the renamed table or column. It changes
// nothing, since no temp object can exist, and a client's own UPDATE of
// that table is refused by SQLite itself.
func tempSchemaRewrite(op int, table string) bool {
	return op == sqlite3.SQLITE_UPDATE && (table == "sqlite_temp_master" || table == "sqlite_temp_schema")
}

func isMeta(table string) bool {
	return strings.HasPrefix(strings.ToLower(table), metaPrefix)
}

// prepareClient prepares client SQL on c, returning the authorizer's reason
// when it refused the statement, or the reason the text is not exactly one
// statement. A refusal left over from an earlier statement (one refused
// while it ran, not while it was prepared) is cleared first, so it cannot
// be blamed on this one.
func (c *conn) prepareClient(sql string) (*sqlite3.SQLiteStmt, string, error) {
	c.guard.denied = ""
	st, err := c.Prepare(sql)
	if err != nil {
		return nil, c.guard.take(), err
	}
	sst := st.(*sqlite3.SQLiteStmt)
	if reason := notOneStatement(sst); reason != "" {
		sst.Close()
		return nil, reason, errors.New(reason)
	}
	return sst, "", nil
}

// notOneStatement says why SQLite did not prepare exactly one statement
// from the text, or "" if it did. With none (the text held only white
// space and comments), the driver's statement has no handle and running it
// crashes the process; with more, the driver prepared the first and would
// silently ignore the rest. inspectText's scanner refuses both before
// SQLite sees the text; this stops any text the scanner misreads. The
// driver keeps the handle and the unprepared rest in unexported fields;
// TestPrepareSeesStatementFields fails if an upgrade moves them.
func notOneStatement(st *sqlite3.SQLiteStmt) string {
	v := reflect.ValueOf(st).Elem()
	handle, tail := v.FieldByName("s"), v.FieldByName("t")
	if handle.Kind() != reflect.Pointer || tail.Kind() != reflect.String {
		return ""
	}
	if handle.IsNil() {
		return "empty SQL"
	}
	if !scanPlaceholders(tail.String()).blank {
		return "holds more than one SQL statement; send each as its own Statement"
	}
	return ""
}

// take returns and clears the last refusal's reason.
func (g *guard) take() string {
	r := g.denied
	g.denied = ""
	return r
}
