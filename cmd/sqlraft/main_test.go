package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/server/servertest"
)

// run executes the CLI with args against addr and returns its output.
func run(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"--addr", addr}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCLIAgainstCluster(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	f := c.Followers()[0].GRPCAddr
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"exec", "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, b BLOB)"}, "0 row(s) affected"},
		{[]string{"exec", "INSERT INTO t(name, n, b) VALUES(?, ?, ?)", "fiona", "int:42", "blob:AAE="}, "1 row(s) affected, last insert id 1"},
		{[]string{"query", "SELECT name, n, b FROM t", "-c", "strong"}, "fiona  42  x'0001'"},
		{[]string{"query", "SELECT name FROM t WHERE n = ?", "int:42", "-o", "json"}, `"fiona"`},
		{[]string{"exec", "INSERT INTO t(name, n) VALUES(CAST(x'fffec328' AS TEXT), 7), (?, 8)", "textbytes:/w=="}, "2 row(s) affected"},
		{[]string{"query", "SELECT name, typeof(name) FROM t WHERE n = 7"}, "CAST(x'fffec328' AS TEXT)  text"},
		{[]string{"query", "SELECT name FROM t WHERE n = 8", "-o", "json"}, `"textBytes": "/w=="`},
		{[]string{"nodes"}, "node0"},
		{[]string{"checksum"}, "applied index"},
		{[]string{"status"}, `"state"`},
	}
	for _, s := range steps {
		out, err := run(t, f, s.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		if !strings.Contains(squashSpace(out), squashSpace(s.want)) {
			t.Fatalf("%v: output lacks %q:\n%s", s.args, s.want, out)
		}
	}
	backup := t.TempDir() + "/copy.db"
	if out, err := run(t, f, "backup", backup); err != nil || !strings.Contains(out, "wrote "+backup) {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if err := checkSQLiteHeader(backup); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, f, "--no-forward", "exec", "INSERT INTO t(name) VALUES('x')"); err == nil ||
		!strings.Contains(err.Error(), "not the leader") {
		t.Fatalf("--no-forward on a follower: %v", err)
	}
	if _, err := run(t, f, "query", "DELETE FROM t"); err == nil || !strings.Contains(err.Error(), "not read-only") {
		t.Fatalf("write as query: %v", err)
	}
}

func TestBenchReportsThroughputAndLatency(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	addr := c.Leader().GRPCAddr
	for _, op := range []string{"write", "read", "mix"} {
		out, err := run(t, addr, "bench", "--op", op, "--clients", "4", "--duration", "300ms", "--rows", "50")
		if err != nil {
			t.Fatalf("bench %s: %v\n%s", op, err, out)
		}
		m := regexp.MustCompile(`ops=(\d+) errors=0 .* ops/s=\d+ p50=\S+ p99=\S+`).FindStringSubmatch(out)
		if m == nil || m[1] == "0" {
			t.Fatalf("bench %s output: %s", op, out)
		}
	}
}

// squashSpace turns every run of white space into one space: protojson
// varies its spacing from run to run, so outputs are compared word by word.
func squashSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
