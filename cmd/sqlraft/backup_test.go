package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// runSplit executes the CLI with args against addr and returns its
// standard output and standard error apart.
func runSplit(t *testing.T, addr string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := rootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"--addr", addr}, args...))
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestBackupAndDumpToStandardOutput: "-" is standard output (no file named
// "-" appears), the summary goes to standard error, and the formats and
// gzip follow the flags and the file's name.
func TestBackupAndDumpToStandardOutput(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	addr := c.Followers()[0].GRPCAddr
	if _, err := run(t, c.Leader().GRPCAddr, "exec", "CREATE TABLE t(a, b)"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, addr, "exec", "INSERT INTO t VALUES(1, 'it''s'), (2.5, x'00ff')"); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(10 * time.Second) // the follower has the rows
	dir := t.TempDir()
	t.Chdir(dir)

	dump, stderr, err := runSplit(t, addr, "dump")
	if err != nil || !strings.HasPrefix(dump, "PRAGMA foreign_keys=OFF;") || !strings.Contains(dump, `INSERT INTO "t" VALUES(2.5,X'00FF');`) ||
		strings.Contains(dump, "_sqlraft_") || !strings.Contains(stderr, "wrote standard output") {
		t.Fatalf("dump: %v\nstdout:\n%s\nstderr:\n%s", err, dump, stderr)
	}
	file, _, err := runSplit(t, addr, "backup", "-")
	if err != nil || !strings.HasPrefix(file, "SQLite format 3\x00") {
		t.Fatalf("backup -: %v (%d bytes)", err, len(file))
	}
	sqlOut, _, err := runSplit(t, addr, "backup", "--format", "sql", "-")
	if err != nil || sqlOut != dump {
		t.Fatalf("backup --format sql -: %v\n%s", err, sqlOut)
	}
	gz, _, err := runSplit(t, addr, "dump", "--gzip", "-")
	if err != nil || gunzipString(t, gz) != dump {
		t.Fatalf("dump --gzip -: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); !os.IsNotExist(err) {
		t.Fatalf("a file named - was written (%v)", err)
	}

	// Names decide when flags do not: .sql.gz is a gzipped dump, .db.gz a
	// gzipped SQLite file.
	for name, want := range map[string]string{"copy.sql.gz": dump, "copy.db.gz": file, "copy.sql": dump, "copy.db": file} {
		out, _, err := runSplit(t, addr, "backup", name)
		if err != nil || !strings.Contains(out, "wrote "+name) {
			t.Fatalf("backup %s: %v\n%s", name, err, out)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".gz") {
			b = []byte(gunzipString(t, string(b)))
		}
		if want == dump && string(b) != dump || want == file && !strings.HasPrefix(string(b), "SQLite format 3\x00") {
			t.Fatalf("backup %s wrote %d bytes unlike the %d expected", name, len(b), len(want))
		}
	}
	db, err := sql.Open("sqlite3", "copy.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("copy.db holds %d rows (%v)", n, err)
	}
	if _, _, err := runSplit(t, addr, "backup", "--format", "csv", "-"); err == nil || !strings.Contains(err.Error(), "want sqlite or sql") {
		t.Fatalf("--format csv: %v", err)
	}
}

func gunzipString(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBackupRequestFromNameAndFlags: --format and --gzip win over the name.
func TestBackupRequestFromNameAndFlags(t *testing.T) {
	const sqlite, sqlText = sqlraftv1.BackupFormat_BACKUP_FORMAT_SQLITE, sqlraftv1.BackupFormat_BACKUP_FORMAT_SQL
	cases := []struct {
		o      backupOptions
		target string
		format sqlraftv1.BackupFormat
		gzip   bool
	}{
		{backupOptions{}, "-", sqlite, false},
		{backupOptions{}, "x.db", sqlite, false},
		{backupOptions{}, "x.sql", sqlText, false},
		{backupOptions{}, "x.sql.gz", sqlText, true},
		{backupOptions{}, "x.gz", sqlite, true},
		{backupOptions{format: "sqlite"}, "x.sql.gz", sqlite, true},
		{backupOptions{gzipSet: true}, "x.sql.gz", sqlText, false},
		{backupOptions{format: "sql", gzip: true, gzipSet: true}, "-", sqlText, true},
	}
	for _, c := range cases {
		req, err := c.o.request(c.target)
		if err != nil || req.GetFormat() != c.format || req.GetGzip() != c.gzip {
			t.Errorf("%+v %s: %v (%v), want %v gzip=%v", c.o, c.target, req, err, c.format, c.gzip)
		}
	}
}
