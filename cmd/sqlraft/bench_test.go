package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/server/servertest"
)

// benchJSON runs bench with args and -o json against addr and decodes its
// report.
func benchJSON(t *testing.T, addr string, args ...string) benchReport {
	t.Helper()
	out, err := run(t, addr, append([]string{"-o", "json", "bench"}, args...)...)
	if err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, out)
	}
	if rep.Errors != 0 || rep.FirstError != "" || rep.Ops == 0 {
		t.Fatalf("bench %v: %+v", args, rep)
	}
	return rep
}

// TestBenchWorkloads runs each workload of issue 11's table on a 3-node
// cluster and checks what the JSON report counts.
func TestBenchWorkloads(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader, follower := c.Leader().GRPCAddr, c.Followers()[0].GRPCAddr
	short := []string{"--duration", "300ms", "--rows", "100"}

	tx := benchJSON(t, leader, append(short, "--op", "tx", "--tx-size", "10", "--clients", "2")...)
	if tx.Unit != "statements" || tx.TxSize != 10 || tx.Units != int64(tx.Ops)*10 || tx.UnitsPerSec <= tx.OpsPerSec {
		t.Fatalf("tx: %+v", tx)
	}
	bulk := benchJSON(t, leader, append(short, "--op", "bulk", "--clients", "2")...)
	if bulk.Unit != "rows" || bulk.TxSize != 1000 || bulk.Units != int64(bulk.Ops)*1000 {
		t.Fatalf("bulk: %+v", bulk)
	}
	for _, level := range []string{"none", "weak", "linearizable", "strong"} {
		rep := benchJSON(t, leader, append(short, "--op", "read", "--consistency", level, "--clients", "4")...)
		if rep.Consistency != level || rep.Unit != "ops" || rep.Units != int64(rep.Ops) || rep.P99Ms < rep.P50Ms {
			t.Fatalf("read at %s: %+v", level, rep)
		}
	}
	// A follower serves NONE itself and forwards the other levels.
	for _, level := range []string{"none", "linearizable"} {
		rep := benchJSON(t, leader, append(short, "--op", "read", "--consistency", level, "--targets", follower)...)
		if len(rep.Targets) != 1 || rep.Targets[0] != follower {
			t.Fatalf("read at %s on a follower: %+v", level, rep)
		}
	}
	path := filepath.Join(t.TempDir(), "bench.db")
	backup := benchJSON(t, follower, "--op", "backup", "--backup-file", path)
	if backup.Unit != "bytes" || backup.Units < 4096 || backup.MBPerSec <= 0 || backup.Ops != 1 {
		t.Fatalf("backup: %+v", backup)
	}
	if err := checkSQLiteHeader(path); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, leader, "bench", "--op", "backup")
	if err != nil || !strings.Contains(out, "op=backup errors=0 bytes=") {
		t.Fatalf("backup as text: %v\n%s", err, out)
	}
}

// TestBenchCountsStatementErrors: a request whose statement fails is an
// error, not a success.
func TestBenchCountsStatementErrors(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	addr := c.Leader().GRPCAddr
	for _, sql := range []string{"CREATE TABLE sqlraft_bench(id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE TRIGGER refuse AFTER INSERT ON sqlraft_bench WHEN NEW.id > 5 BEGIN SELECT RAISE(ABORT, 'refused'); END"} {
		if out, err := run(t, addr, "exec", sql); err != nil {
			t.Fatalf("%s: %v\n%s", sql, err, out)
		}
	}
	for _, op := range []string{"write", "tx"} {
		out, err := run(t, addr, "-o", "json", "bench", "--op", op, "--duration", "200ms", "--rows", "5")
		if err != nil {
			t.Fatalf("%s: %v\n%s", op, err, out)
		}
		var rep benchReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Ops != 0 || rep.Units != 0 || rep.Errors == 0 || !strings.Contains(rep.FirstError, "refused") {
			t.Fatalf("%s: every write was refused, but: %+v", op, rep)
		}
	}
}
