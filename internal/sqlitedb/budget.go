package sqlitedb

/*

// The SQLite library itself is go-sqlite3's, compiled into the same binary;
// these are the few entry points the budget needs, declared here so this
// package does not depend on where that module keeps its header.
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_value sqlite3_value;
typedef long long sqlite3_int64;
void sqlite3_progress_handler(sqlite3*, int, int(*)(void*), void*);
void *sqlite3_preupdate_hook(sqlite3*, void(*)(void*, sqlite3*, int, const char*, const char*, sqlite3_int64, sqlite3_int64), void*);
int sqlite3_preupdate_count(sqlite3*);
int sqlite3_preupdate_new(sqlite3*, int, sqlite3_value**);
int sqlite3_value_bytes(sqlite3_value*);

#include <stdlib.h>

#define BUDGET_DELETE 9   // SQLITE_DELETE
#define BUDGET_PROGRESS_OPS 1000

// budget is one connection's allowance for the statements of one Raft entry.
// The counters only fall while armed is set, so sqlraft's own statements are
// never charged.
typedef struct {
	int armed;
	int exceeded;          // 0, or which limit ran out: 1 steps, 2 rows, 3 bytes
	sqlite3_int64 ticks;   // progress callbacks left (one per BUDGET_PROGRESS_OPS VM steps)
	sqlite3_int64 rows;    // rows the entry may still insert or update
	sqlite3_int64 bytes;   // bytes of new row values the entry may still write
} budget;

static int budget_progress(void *p) {
	budget *b = p;
	if (!b->armed) return 0;
	if (b->exceeded) return 1;
	if (b->ticks >= 0 && --b->ticks < 0) { b->exceeded = 1; return 1; }
	return 0;
}

static void budget_preupdate(void *p, sqlite3 *db, int op, const char *zDb, const char *zName,
		sqlite3_int64 k1, sqlite3_int64 k2) {
	budget *b = p;
	if (!b->armed || op == BUDGET_DELETE || b->exceeded) return;
	if (b->rows >= 0 && --b->rows < 0) { b->exceeded = 2; return; }
	if (b->bytes < 0) return;
	int n = sqlite3_preupdate_count(db);
	for (int i = 0; i < n; i++) {
		sqlite3_value *v = 0;
		if (sqlite3_preupdate_new(db, i, &v) == 0 && v) b->bytes -= sqlite3_value_bytes(v);
	}
	b->bytes -= n; // a byte of record header per column, at least
	if (b->bytes < 0) b->exceeded = 3;
}

static budget *budget_install(void *db) {
	budget *b = calloc(1, sizeof(budget));
	if (!b) return 0;
	sqlite3_progress_handler((sqlite3*)db, BUDGET_PROGRESS_OPS, budget_progress, b);
	sqlite3_preupdate_hook((sqlite3*)db, budget_preupdate, b);
	return b;
}

static void budget_remove(void *db, budget *b) {
	sqlite3_progress_handler((sqlite3*)db, 0, 0, 0);
	sqlite3_preupdate_hook((sqlite3*)db, 0, 0);
	free(b);
}
*/
import "C"

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/mattn/go-sqlite3"
)

// progressOps is how many SQLite virtual-machine steps pass between two
// checks of a step budget (BUDGET_PROGRESS_OPS in the C shim).
const progressOps = C.BUDGET_PROGRESS_OPS

// Limits bound the work one Raft entry may do on the writer. They are chosen
// by the node that proposes the entry and travel with it, so every replica
// applies the entry under the same limits and a runaway entry fails the same
// way everywhere, at the same point. Zero means no limit.
type Limits struct {
	// Steps is the number of SQLite virtual-machine steps the entry's
	// statements may take, together (counted in units of 1000).
	Steps uint64
	// Rows is the number of rows the entry may insert or update.
	Rows uint64
	// Bytes is the size of the row values the entry may insert or update.
	Bytes uint64
	// ResultBytes bounds the rows one read statement in the entry returns
	// (approximate encoded size); zero takes Options.MaxResultBytes.
	ResultBytes uint64
}

// BudgetError says which limit a statement ran out of.
type BudgetError struct {
	Limit string // "steps", "rows" or "bytes"
	Value uint64
}

func (e *BudgetError) Error() string {
	switch e.Limit {
	case "steps":
		return fmt.Sprintf("exceeded the work budget of one write (%d SQLite steps, --max-write-steps); "+
			"the statement was stopped and the entry rolled back on every node", e.Value)
	case "rows":
		return fmt.Sprintf("exceeded the row budget of one write (%d rows inserted or updated, --max-write-rows); "+
			"the statement was stopped and the entry rolled back on every node", e.Value)
	}
	return fmt.Sprintf("exceeded the byte budget of one write (%d bytes of row values, --max-write-bytes); "+
		"the statement was stopped and the entry rolled back on every node", e.Value)
}

// budget is the C-side allowance of one connection.
type budget struct {
	db     unsafe.Pointer // the connection's sqlite3*
	c      *C.budget
	limits Limits
}

// installBudget puts a progress handler and a pre-update hook on conn. They
// cost nothing until the budget is armed.
func installBudget(conn *sqlite3.SQLiteConn) (*budget, error) {
	db := rawHandle(conn)
	if db == nil {
		return nil, fmt.Errorf("sqlitedb: no SQLite handle on the connection")
	}
	c := C.budget_install(db)
	if c == nil {
		return nil, fmt.Errorf("sqlitedb: out of memory installing the write budget")
	}
	b := &budget{db: db, c: c}
	b.reset(Limits{})
	return b, nil
}

// reset starts a new entry's allowance.
func (b *budget) reset(l Limits) {
	b.limits = l
	b.c.exceeded = 0
	b.c.ticks = signed(l.Steps / progressOps)
	if l.Steps > 0 && l.Steps < progressOps {
		b.c.ticks = 0
	}
	b.c.rows = signed(l.Rows)
	b.c.bytes = signed(l.Bytes)
}

// signed maps a limit to the C counter: -1 means unlimited.
func signed(v uint64) C.sqlite3_int64 {
	if v == 0 || v > 1<<62 {
		return -1
	}
	return C.sqlite3_int64(v)
}

// arm charges the statements that run until disarm.
func (b *budget) arm()        { b.c.armed = 1 }
func (b *budget) disarm()     { b.c.armed = 0 }
func (b *budget) armed() bool { return b.c.armed != 0 }

// exceeded returns the limit that ran out, or nil.
func (b *budget) exceeded() error {
	switch b.c.exceeded {
	case 1:
		return &BudgetError{Limit: "steps", Value: b.limits.Steps}
	case 2:
		return &BudgetError{Limit: "rows", Value: b.limits.Rows}
	case 3:
		return &BudgetError{Limit: "bytes", Value: b.limits.Bytes}
	}
	return nil
}

// remove takes the handler and hook off the connection and frees the
// budget; call it before closing the connection.
func (b *budget) remove() {
	if b.c != nil {
		C.budget_remove(b.db, b.c)
		b.c = nil
	}
}

// rawHandle returns the sqlite3* behind a go-sqlite3 connection. The driver
// keeps it in an unexported field and offers no accessor;
// TestBudgetFindsHandle fails if a driver upgrade moves it.
func rawHandle(conn *sqlite3.SQLiteConn) unsafe.Pointer {
	f := reflect.ValueOf(conn).Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return nil
	}
	return unsafe.Pointer(f.Pointer())
}
