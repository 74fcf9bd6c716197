package sqlitedb

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDumpSQLIsExact: a dump replayed into a plain SQLite database gives
// every value back with its type and bytes, TEXT with a NUL byte or not
// UTF-8 included, and leaves sqlraft's own tables out.
func TestDumpSQLIsExact(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(v)"),
		stmt(`INSERT INTO t VALUES(1), (-0.0), (1e-320), (4.9406564584124654e-324), ('a'||char(0)||'b'),
			(CAST(X'80ff00' AS TEXT)), ('line
two'), (X'00'), (NULL), ('')`))
	r, err := db.PinRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	err = r.DumpSQL(&dump)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump.String(), internalPrefix) || !strings.Contains(dump.String(), "CAST(X'610062' AS TEXT)") {
		t.Fatalf("the dump holds sqlraft's tables:\n%s", dump.String())
	}
	plain, err := sql.Open("sqlite3", filepath.Join(tempDir(t), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Exec(dump.String()); err != nil {
		t.Fatalf("replay: %v\n%s", err, dump.String())
	}
	const describe = "SELECT group_concat(typeof(v) || ':' || CASE typeof(v) WHEN 'real' THEN printf('%.17g', v) " +
		"ELSE hex(v) END, ' ') FROM (SELECT v FROM t ORDER BY rowid)"
	var want, got string
	err = db.withStreamConn(context.Background(), func(ctx context.Context, c *conn) error {
		return c.internal(func() error {
			return queryRows(ctx, c, describe, nil, func(v []driver.Value) error {
				want = textOf(v[0])
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.QueryRow(describe).Scan(&got); err != nil || got != want {
		t.Fatalf("replayed: %s (%v)\nwant      %s\ndump:\n%s", got, err, want, dump.String())
	}
}
