package server_test

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// backupBytes runs a Backup through n and returns its bytes, the header's
// Raft index, and its messages' encoded sizes.
func backupBytes(t *testing.T, n *servertest.Node, req *sqlraftv1.BackupRequest) ([]byte, uint64, []int) {
	t.Helper()
	stream, err := n.DB().Backup(ctx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var index uint64
	var sizes []int
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), index, sizes
		}
		if err != nil {
			t.Fatalf("backup %v via %s: %v", req, n.ID, err)
		}
		if msg.GetHeader() != nil {
			index = msg.GetHeader().GetRaftIndex()
		}
		sizes = append(sizes, proto.Size(msg))
		buf.Write(msg.GetData())
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openPlain opens a SQLite file with plain database/sql.
func openPlain(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// replay runs a SQL dump in a fresh plain SQLite database.
func replay(t *testing.T, dump []byte) *sql.DB {
	t.Helper()
	db := openPlain(t, filepath.Join(t.TempDir(), "replayed.db"))
	if _, err := db.Exec(string(dump)); err != nil {
		t.Fatalf("replay the dump: %v", err)
	}
	return db
}

// content describes db's schema and every row of its tables, each value
// with its type, sorted (a dump, like sqlite3's, does not keep the rowids
// of tables without an INTEGER PRIMARY KEY).
func content(t *testing.T, db *sql.DB) string {
	t.Helper()
	var out strings.Builder
	var tables []string
	rows, err := db.Query(`SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL
		AND substr(tbl_name, 1, 9) != '_sqlraft_' ORDER BY name`) // the file has them, a dump leaves them out
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, name, tbl, sqlText string
		if err := rows.Scan(&typ, &name, &tbl, &sqlText); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s %s on %s: %s\n", typ, name, tbl, sqlText)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, table := range tables {
		var cols []string
		crows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for crows.Next() {
			var c string
			crows.Scan(&c)
			c = strings.ReplaceAll(c, `"`, `""`)
			cols = append(cols, fmt.Sprintf(`typeof("%[1]s") || ':' || quote("%[1]s")`, c))
		}
		crows.Close()
		q := fmt.Sprintf(`SELECT %s FROM "%s" ORDER BY 1`, strings.Join(cols, " || ' ' || "), table)
		if table == "sqlite_sequence" {
			q = `SELECT name || ' ' || seq FROM sqlite_sequence ORDER BY name`
		}
		vrows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for vrows.Next() {
			var v string
			vrows.Scan(&v)
			fmt.Fprintf(&out, "%s: %s\n", table, v)
		}
		vrows.Close()
	}
	return out.String()
}

// fillEveryKind makes tables holding every kind of value, an index, a
// view, a trigger, an AUTOINCREMENT table and a generated column.
func fillEveryKind(t *testing.T, leader *servertest.Node) {
	exec(t, leader,
		st(`CREATE TABLE kinds(id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, any_col, "odd ""name""" TEXT)`),
		st(`CREATE TABLE log(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)`),
		st(`CREATE TABLE norowid(k TEXT PRIMARY KEY, v) WITHOUT ROWID`),
		st(`CREATE TABLE gen(a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) STORED, c AS (a + 1))`),
		st(`CREATE INDEX kinds_t ON kinds(t)`),
		st(`CREATE VIEW big AS SELECT id, i FROM kinds WHERE i > 100`),
		st(`CREATE TRIGGER kinds_log AFTER INSERT ON kinds BEGIN INSERT INTO log(what) VALUES('added ' || NEW.id); END`),
	)
	exec(t, leader,
		st(`INSERT INTO kinds VALUES(1, 9223372036854775807, 0.1, 'it''s', X'00ff10', NULL, 'x')`),
		st(`INSERT INTO kinds VALUES(2, -9223372036854775808, 1e308, 'two
lines	and a tab\r\n', X'', 42, '')`),
		st(`INSERT INTO kinds VALUES(3, 0, -2.2250738585072014e-308, CAST(X'fffe41c328' AS TEXT), zeroblob(3), 1.0/3, NULL)`),
		st(`INSERT INTO kinds VALUES(4, 7, 1.0/3, 'ünïcødé ☃', NULL, 'text', 'y')`),
		st(`INSERT INTO kinds VALUES(5, 1000, 9007199254740993.0, '', X'DEADBEEF', X'01', 'z')`),
		st(`INSERT INTO kinds VALUES(6, NULL, NULL, NULL, NULL, 2.5, NULL)`),
		st(`INSERT INTO norowid VALUES('b', 2), ('a', 'one')`),
		st(`INSERT INTO gen(a) VALUES(1), (20)`),
		st(`DELETE FROM log WHERE id = 1`),
	)
}

// TestSQLDumpReplaysIntoPlainSQLite: a SQL dump through a follower, fed to
// a fresh plain SQLite database, gives the same schema and rows (every
// value with its type) as the SQLite-file backup, without sqlraft's own
// tables; gzip of either format decompresses to the same bytes.
func TestSQLDumpReplaysIntoPlainSQLite(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader := c.Leader()
	fillEveryKind(t, leader)
	c.WaitConverged(10 * time.Second)
	n := c.Followers()[0]

	file, fileIndex, _ := backupBytes(t, n, &sqlraftv1.BackupRequest{})
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	want := content(t, openPlain(t, path))

	dump, dumpIndex, _ := backupBytes(t, n, &sqlraftv1.BackupRequest{Format: sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL})
	if dumpIndex == 0 || dumpIndex != fileIndex {
		t.Errorf("the dump is at index %d, the file at %d", dumpIndex, fileIndex)
	}
	if !bytes.HasPrefix(dump, []byte("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")) ||
		!bytes.HasSuffix(dump, []byte("COMMIT;\n")) {
		t.Errorf("the dump does not look like sqlite3's:\n%s", dump)
	}
	if bytes.Contains(dump, []byte("_sqlraft_")) {
		t.Errorf("the dump holds sqlraft's own tables:\n%s", dump)
	}
	if got := content(t, replay(t, dump)); got != want {
		t.Errorf("the replayed dump holds\n%s\nwant\n%s\ndump:\n%s", got, want, dump)
	}

	for _, format := range []sqlraftv1.BackupFormat{sqlraftv1.BackupFormat_BACKUP_FORMAT_SQLITE, sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL} {
		plain := file
		if format == sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL {
			plain = dump
		}
		gz, _, _ := backupBytes(t, n, &sqlraftv1.BackupRequest{Format: format, Gzip: true})
		if got := gunzip(t, gz); !bytes.Equal(got, plain) {
			t.Errorf("%v: gzip holds %d bytes that are not the %d of the plain copy", format, len(got), len(plain))
		}
	}
}

// TestBigSQLDumpStreams: a dump of a table many times the message size
// limit arrives in many messages, none above the limit, and replays whole;
// so does its gzip.
func TestBigSQLDumpStreams(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = msglimit.Minimum }})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"))
	for i := 0; i < 4; i++ { // 4 x 1,000 rows of 1 KB: 8 MB of hex
		execRepeat(t, leader, servertest.Idempotent, st("INSERT OR IGNORE INTO t(id, v) SELECT ? + i, randomblob(1000) FROM "+
			"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) SELECT i FROM n)", integer(int64(1000*i))))
	}
	c.WaitConverged(10 * time.Second)
	n := c.Followers()[0]
	dump, _, sizes := backupBytes(t, n, &sqlraftv1.BackupRequest{Format: sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL})
	if len(dump) < 4*msglimit.Minimum || len(sizes) < 4 {
		t.Fatalf("a dump of %d bytes came in %d messages", len(dump), len(sizes))
	}
	limit, err := msglimit.New(msglimit.Minimum)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sizes {
		if s > limit.ResponseBytes() {
			t.Fatalf("message %d is %d bytes, above the %d limit", i, s, limit.ResponseBytes())
		}
	}
	db := replay(t, dump)
	var rows, bytesSum int64
	if err := db.QueryRow("SELECT count(*), sum(length(v)) FROM t").Scan(&rows, &bytesSum); err != nil || rows != 4000 || bytesSum != 4000*1000 {
		t.Fatalf("the replayed dump has %d rows of %d bytes (%v)", rows, bytesSum, err)
	}
	gz, _, gzSizes := backupBytes(t, n, &sqlraftv1.BackupRequest{Format: sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL, Gzip: true})
	if !bytes.Equal(gunzip(t, gz), dump) || len(gzSizes) < 2 {
		t.Fatalf("the gzipped dump (%d messages) is not the dump", len(gzSizes))
	}
}

// TestBackupRefusesAnUnknownFormat: INVALID_ARGUMENT, not a file.
func TestBackupRefusesAnUnknownFormat(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	stream, err := c.Leader().DB().Backup(ctx(t), &sqlraftv1.BackupRequest{Format: 99})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.InvalidArgument)
}
