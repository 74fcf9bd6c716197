package sqlitedb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

func TestScanPlaceholders(t *testing.T) {
	cases := []struct {
		sql              string
		positional, stmt int
		named            []string
	}{
		{"SELECT ?, ?", 2, 1, nil},
		{"SELECT ?3, ?", 4, 1, nil},
		{"SELECT '?', \"?\", [?], `?` -- ?\n /* ? */", 0, 1, nil},
		{"SELECT :a, @b, $c, :a", 0, 1, []string{"a", "b", "c"}},
		{"SELECT 1; SELECT 2;", 0, 2, nil},
		{"SELECT 'a;b'; -- ;", 0, 1, nil},
		{";;  ", 0, 0, nil},
		{"CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = CASE WHEN 1 THEN 2 END; DELETE FROM z; END", 0, 1, nil},
		{"SELECT 'it''s ?'", 0, 1, nil},
		{"SELECT a$b FROM t WHERE x = $v", 0, 1, []string{"v"}},
		// Named placeholders as SQLite's tokenizer reads them.
		{"SELECT :a$b, @a::b, $a(x;y), :a(", 0, 1, []string{"a$b", "a::b", "a(x;y)"}},
		{"SELECT $::a, :, @ , $(x)", 0, 1, []string{"::a"}},
	}
	for _, c := range cases {
		p := scanPlaceholders(c.sql)
		if p.positional != c.positional || p.statements != c.stmt || len(p.named) != len(c.named) {
			t.Errorf("%q: got %d positional, %d statements, named %v", c.sql, p.positional, p.statements, p.named)
		}
		for _, n := range c.named {
			if !p.named[n] {
				t.Errorf("%q: named %q missing", c.sql, n)
			}
		}
	}
}

// TestPrepareSeesStatementFields checks that notOneStatement still finds the
// driver's statement handle and unprepared tail: without them it would let
// an empty statement (which crashes the driver when run) or a second
// statement through.
func TestPrepareSeesStatementFields(t *testing.T) {
	db := openTest(t)
	err := db.withChecker(context.Background(), func(c *conn) error {
		for sql, want := range map[string]string{
			" -- nothing\n":      "empty SQL",
			"SELECT 1; SELECT 2": "holds more than one SQL statement; send each as its own Statement",
			"SELECT 1; -- done":  "",
		} {
			st, err := c.Prepare(sql)
			if err != nil {
				t.Fatalf("%q: %v", sql, err)
			}
			if got := notOneStatement(st.(*sqlite3.SQLiteStmt)); got != want {
				t.Errorf("%q: %q, want %q", sql, got, want)
			}
			st.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOneStatementExactly: text that SQLite would not run in full is
// refused, even where the scanner miscounts (a trigger on a table named
// "begin" looks to it like one more BEGIN ... END block).
func TestOneStatementExactly(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt(`CREATE TABLE "begin"(x)`), stmt("CREATE TABLE t(x)"))
	for _, sql := range []string{
		"SELECT 1\x00; DELETE FROM t",
		"\x00",
		"CREATE TRIGGER tr AFTER INSERT ON begin BEGIN SELECT 1; END; DELETE FROM t",
	} {
		_, err := db.Inspect(context.Background(), []*sqlraftv1.Statement{stmt(sql)})
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("Inspect %q: %v, want an InvalidError", sql, err)
		}
		_, _, err = db.Query(context.Background(), []*sqlraftv1.Statement{stmt(sql)})
		if !errors.As(err, &inv) {
			t.Errorf("Query %q: %v, want an InvalidError", sql, err)
		}
		res := write(t, db, 2, time.Now(), 1, stmt(sql))
		if res[0].GetExecute().GetError() == "" {
			t.Errorf("write %q ran", sql)
		}
	}
}

// TestNamedPlaceholdersBind: every named placeholder SQLite accepts is
// bound by the name the scanner gives it, and one the driver cannot bind
// (#name) is refused rather than left NULL.
func TestNamedPlaceholdersBind(t *testing.T) {
	db := openTest(t)
	named := func(sql string, names ...string) *sqlraftv1.Statement {
		s := stmt(sql)
		s.NamedParams = map[string]*sqlraftv1.Value{}
		for _, n := range names {
			s.NamedParams[n] = text(n)
		}
		return s
	}
	res, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{
		named("SELECT :a$b, @c::d, $e(f), :a$b", "a$b", "c::d", "e(f)")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range res[0].GetRows()[0].GetValues() {
		got = append(got, v.GetText())
	}
	if strings.Join(got, " ") != "a$b c::d e(f) a$b" {
		t.Errorf("bound %q", got)
	}
	for _, s := range []*sqlraftv1.Statement{stmt("SELECT #a"), named("SELECT :a$b", "a", "b"), named("SELECT :a(x)", "a")} {
		var inv *InvalidError
		if _, err := db.Inspect(context.Background(), []*sqlraftv1.Statement{s}); !errors.As(err, &inv) {
			t.Errorf("%q with %v: %v, want an InvalidError", s.Sql, s.NamedParams, err)
		}
	}
}
