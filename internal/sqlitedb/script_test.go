package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// TestScripts runs the transcripts under testdata/scripts against a fresh
// database each: what the validator and the authorizer let through, refuse
// and why, judged as the writer and as a reader. Run with -rewrite to
// update the expected output after an intended change (then read the diff).
//
// Commands (each takes one statement per input line):
//
//	inspect  validates as Execute does before proposing: read, write,
//	         unknown (judged when it runs) or refused with the reason
//	write    runs the statements in one write transaction, as the FSM does
//	query    runs the statements as a read
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		db := openTest(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var stmts []*sqlraftv1.Statement
			for _, l := range strings.Split(d.Input, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					stmts = append(stmts, stmt(l))
				}
			}
			switch d.Cmd {
			case "inspect":
				return scriptInspect(db, stmts)
			case "write":
				return scriptWrite(t, db, stmts)
			case "query":
				res, _, err := db.Query(context.Background(), stmts)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				var b strings.Builder
				for _, r := range res {
					scriptQueryResult(&b, r)
				}
				return b.String()
			}
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			return ""
		})
	})
}

// scriptInspect judges each statement on its own, so one refusal does not
// hide the verdict on the next.
func scriptInspect(db *DB, stmts []*sqlraftv1.Statement) string {
	var b strings.Builder
	for _, s := range stmts {
		kinds, err := db.Inspect(context.Background(), []*sqlraftv1.Statement{s})
		var inv *InvalidError
		switch {
		case errors.As(err, &inv):
			fmt.Fprintf(&b, "refused: %s\n", inv.Reason)
		case err != nil:
			fmt.Fprintf(&b, "error: %v\n", err)
		default:
			b.WriteString(map[Kind]string{Unknown: "unknown", ReadOnly: "read", Write: "write"}[kinds[0]] + "\n")
		}
	}
	return b.String()
}

// scriptWrite runs stmts in one write transaction and commits it.
func scriptWrite(t *testing.T, db *DB, stmts []*sqlraftv1.Statement) string {
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range stmts {
		r := tx.Run(s, false)
		if q := r.GetQuery(); q != nil {
			scriptQueryResult(&b, q)
			continue
		}
		if e := r.GetExecute(); e.GetError() != "" {
			fmt.Fprintf(&b, "error: %s\n", e.GetError())
		} else {
			fmt.Fprintf(&b, "ok rows_affected=%d\n", e.GetRowsAffected())
		}
	}
	if err := tx.Commit(); err != nil {
		fmt.Fprintf(&b, "commit: %v\n", err)
	}
	return b.String()
}

func scriptQueryResult(b *strings.Builder, q *sqlraftv1.QueryResult) {
	if q.GetError() != "" {
		fmt.Fprintf(b, "error: %s\n", q.GetError())
		return
	}
	for _, row := range q.GetRows() {
		vals := make([]string, len(row.GetValues()))
		for i, v := range row.GetValues() {
			switch k := v.GetKind().(type) {
			case *sqlraftv1.Value_Integer:
				vals[i] = strconv.FormatInt(k.Integer, 10)
			case *sqlraftv1.Value_Text:
				vals[i] = strconv.Quote(k.Text)
			default:
				vals[i] = fmt.Sprint(v.GetKind())
			}
		}
		fmt.Fprintf(b, "row: %s\n", strings.Join(vals, " | "))
	}
}
