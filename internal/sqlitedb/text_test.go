package sqlitedb

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// badText is TEXT that is not valid UTF-8.
var badText = []byte{0xff, 0xfe, 0xc3, 0x28}

func textBytes(b []byte) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: b}}
}

// wantTextBytes fails unless v is text_bytes holding exactly want.
func wantTextBytes(t *testing.T, where string, v *sqlraftv1.Value, want []byte) {
	t.Helper()
	k, ok := v.GetKind().(*sqlraftv1.Value_TextBytes)
	if !ok || !bytes.Equal(k.TextBytes, want) {
		t.Errorf("%s: got %v, want text_bytes %x", where, v, want)
	}
}

// wantMarshals fails unless m encodes: a string field holding invalid UTF-8
// does not.
func wantMarshals(t *testing.T, where string, m proto.Message) {
	t.Helper()
	if _, err := proto.Marshal(m); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}

func TestInvalidUTF8TextComesBackAsTextBytes(t *testing.T) {
	db := openTest(t)
	res := write(t, db, 1, time.Now(), 1,
		stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"),
		stmt("INSERT INTO t VALUES(1, CAST(x'fffec328' AS TEXT))"),
		stmt("INSERT INTO t VALUES(2, ?)", textBytes(badText)),
		&sqlraftv1.Statement{Sql: "INSERT INTO t VALUES(3, :v)", NamedParams: map[string]*sqlraftv1.Value{"v": textBytes(badText)}},
		stmt("INSERT INTO t VALUES(4, ?)", text("héllo")),
		stmt("INSERT INTO t VALUES(5, ?)", textBytes([]byte("plain"))))
	for i, r := range res {
		if e := r.GetExecute().GetError(); e != "" {
			t.Fatalf("statement %d: %s", i, e)
		}
	}
	q := stmt("SELECT id, v, typeof(v), length(CAST(v AS BLOB)) FROM t ORDER BY id")
	out, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{q})
	if err != nil {
		t.Fatal(err)
	}
	wantMarshals(t, "Query result", out[0])
	checkTextRows(t, "Query", out[0].GetRows())

	// The read-only path the FSM takes for STRONG reads.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	strong := tx.Run(q, true)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantMarshals(t, "Run result", strong)
	checkTextRows(t, "Run", strong.GetQuery().GetRows())

	var streamed []*sqlraftv1.Row
	err = db.QueryStream(context.Background(), q, 2, func(_ Position, _, _ []string, rows []*sqlraftv1.Row) error {
		for _, r := range rows {
			wantMarshals(t, "streamed row", r)
		}
		streamed = append(streamed, rows...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTextRows(t, "QueryStream", streamed)
}

// checkTextRows checks the rows of TestInvalidUTF8TextComesBackAsTextBytes.
func checkTextRows(t *testing.T, where string, rows []*sqlraftv1.Row) {
	t.Helper()
	if len(rows) != 5 {
		t.Fatalf("%s: %d rows, want 5", where, len(rows))
	}
	for i, r := range rows {
		v := r.GetValues()
		if v[2].GetText() != "text" {
			t.Errorf("%s row %d: typeof %v, want text", where, i+1, v[2])
		}
		switch i {
		case 0, 1, 2:
			wantTextBytes(t, where, v[1], badText)
			if v[3].GetInteger() != 4 {
				t.Errorf("%s row %d: %v bytes stored, want 4", where, i+1, v[3])
			}
		case 3:
			if v[1].GetText() != "héllo" {
				t.Errorf("%s row 4: got %v, want text héllo", where, v[1])
			}
		case 4:
			if v[1].GetText() != "plain" {
				t.Errorf("%s row 5: got %v, want text plain", where, v[1])
			}
		}
	}
}

func TestTextBytesExpressionColumnTypeIsText(t *testing.T) {
	db := openTest(t)
	out, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{
		stmt("SELECT CAST(x'fffec328' AS TEXT), ?, ?", textBytes(badText), textBytes(nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].GetTypes(); len(got) != 3 || got[0] != "text" || got[1] != "text" || got[2] != "text" {
		t.Errorf("types %v, want text, text, text", got)
	}
	v := out[0].GetRows()[0].GetValues()
	wantTextBytes(t, "CAST", v[0], badText)
	wantTextBytes(t, "parameter", v[1], badText)
	if k, ok := v[2].GetKind().(*sqlraftv1.Value_Text); !ok || k.Text != "" {
		t.Errorf("empty text_bytes parameter: got %v, want empty text", v[2])
	}
}

func TestChecksumHashesTextBytesAsText(t *testing.T) {
	sum := func(value string, params ...*sqlraftv1.Value) string {
		db := openTest(t)
		write(t, db, 1, time.Unix(0, 0), 1,
			stmt("CREATE TABLE t(v)"), stmt("INSERT INTO t VALUES("+value+")", params...))
		_, s, err := db.Checksum(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	viaCast := sum("CAST(x'fffec328' AS TEXT)")
	viaParam := sum("?", textBytes(badText))
	asBlob := sum("x'fffec328'")
	if viaCast != viaParam {
		t.Errorf("same TEXT, different checksums: %s and %s", viaCast, viaParam)
	}
	if viaCast == asBlob {
		t.Errorf("TEXT and BLOB with the same bytes have the same checksum %s", asBlob)
	}
}

func TestErrorQuotingStoredBytesIsValidUTF8(t *testing.T) {
	db := openTest(t)
	res := write(t, db, 1, time.Now(), 1,
		stmt("CREATE TABLE t(doc TEXT, path TEXT)"),
		stmt("INSERT INTO t VALUES('{}', CAST(x'24ff' AS TEXT))"),
		stmt("INSERT INTO t SELECT json_extract(doc, path), 'x' FROM t"))
	if e := res[2].GetExecute().GetError(); !strings.Contains(e, "bad JSON path") || !utf8.ValidString(e) {
		t.Errorf("write error %q: want a valid UTF-8 'bad JSON path' message", e)
	}
	wantMarshals(t, "write result", res[2])
	out, _, err := db.Query(context.Background(), []*sqlraftv1.Statement{stmt("SELECT json_extract(doc, path) FROM t")})
	if err != nil {
		t.Fatal(err)
	}
	if e := out[0].GetError(); !strings.Contains(e, "bad JSON path") || !utf8.ValidString(e) {
		t.Errorf("read error %q: want a valid UTF-8 'bad JSON path' message", e)
	}
	wantMarshals(t, "read result", out[0])
}
