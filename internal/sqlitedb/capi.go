package sqlitedb

/*
// Entry points of the SQLite library compiled into go-sqlite3, declared here
// (as budget.go does) for the few things the driver does not expose.
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef long long sqlite3_int64;
sqlite3_int64 sqlite3_total_changes64(sqlite3*);
sqlite3_int64 sqlite3_last_insert_rowid(sqlite3*);
int sqlite3_reset(sqlite3_stmt*);
int sqlite3_clear_bindings(sqlite3_stmt*);

static void counters(void *db, sqlite3_int64 *total, sqlite3_int64 *last) {
	*total = sqlite3_total_changes64((sqlite3*)db);
	*last = sqlite3_last_insert_rowid((sqlite3*)db);
}

static void stmt_release(void *st) {
	sqlite3_reset((sqlite3_stmt*)st);
	sqlite3_clear_bindings((sqlite3_stmt*)st);
}
*/
import "C"

import (
	"reflect"
	"unsafe"

	"github.com/mattn/go-sqlite3"
)

// changeCounters returns SQLite's total_changes() and last_insert_rowid()
// for the connection behind handle (a sqlite3*), read directly rather than
// through a query: the writer asks for them around every client statement.
func changeCounters(handle unsafe.Pointer) (total, lastID int64) {
	var t, l C.sqlite3_int64
	C.counters(handle, &t, &l)
	return int64(t), int64(l)
}

// stmtHandle returns the sqlite3_stmt* behind a go-sqlite3 statement, or
// nil. The driver keeps it in an unexported field (the one
// notOneStatement reads); TestPrepareSeesStatementFields fails if an
// upgrade moves it.
func stmtHandle(st *sqlite3.SQLiteStmt) unsafe.Pointer {
	f := reflect.ValueOf(st).Elem().FieldByName("s")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return nil
	}
	return unsafe.Pointer(f.Pointer())
}

// releaseStmt resets a statement the cache keeps, and drops its bound
// values, so that it holds no read snapshot, no lock and no large value
// between uses. The driver resets a statement before binding it, but not
// after an Exec: a statement stopped early (an INSERT ... RETURNING whose
// rows nobody read, or one that failed) would stay active until its next use.
func releaseStmt(handle unsafe.Pointer) {
	if handle != nil {
		C.stmt_release(handle)
	}
}
