//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

var sqlraftd string // the daemon binary, built with the robustness tag

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sqlraft-robustness-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sqlraftd = filepath.Join(dir, "sqlraftd")
	build := exec.Command("go", "build", "-tags", "robustness,sqlite_preupdate_hook", "-o", sqlraftd, "../../cmd/sqlraftd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sqlraftd:", err)
		return 1
	}
	return m.Run()
}

// timing is a scenario's timeline: the workloads run for warmup, then the
// fault is injected and held, then they run cooldown more.
type timing struct{ warmup, hold, cooldown time.Duration }

func scenarioTiming() timing {
	if testing.Short() {
		return timing{warmup: 2 * time.Second, hold: 4 * time.Second, cooldown: 3 * time.Second}
	}
	return timing{warmup: 5 * time.Second, hold: 12 * time.Second, cooldown: 10 * time.Second}
}

func seed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("ROBUSTNESS_SEED"), 10, 64); err == nil {
		return s
	}
	return 1
}

// outDir is where results, failed histories (porcupine HTML) and node logs
// of failed scenarios go: $ROBUSTNESS_OUT, or a new temporary directory.
func outDir(t *testing.T) string {
	dir := os.Getenv("ROBUSTNESS_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sqlraft-robustness")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// result is one row of the matrix.
type result struct {
	scenario, fault                 string
	regOps, regUnknown, regFailed   int
	linearizable                    string
	setAcked, setUnknown, setFailed int
	lost, phantom                   int
	elapsed                         time.Duration
	html                            string // porcupine's visualization, when not linearizable
	transfers, bankReads, badSums   int
}

var (
	resultsMu sync.Mutex
	results   []result
)

// TestRobustness runs every fault (ROBUSTNESS_FAULTS, comma-separated,
// selects some) against a fresh 3-node cluster of sqlraftd processes with
// both workloads running, then checks the register history with porcupine
// and the set on every node.
func TestRobustness(t *testing.T) {
	want := map[string]bool{}
	for _, f := range strings.Split(os.Getenv("ROBUSTNESS_FAULTS"), ",") {
		if f != "" {
			want[f] = true
		}
	}
	out := outDir(t)
	t.Cleanup(func() { writeMatrix(t, out) })
	for i, f := range faults {
		if len(want) > 0 && !want[f.name] {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			r := runScenario(t, f, seed()+uint64(i), out, readLevels)
			if r.linearizable == "NO" {
				t.Errorf("the register history is not linearizable: see %s", r.html)
			}
		})
	}
}

// runScenario runs fault f under both workloads, register reads at levels,
// checks the set, and returns the row of the matrix.
func runScenario(t *testing.T, f fault, seed uint64, out string, levels []string) result {
	began := time.Now()
	tm := scenarioTiming()
	dir := t.TempDir()
	if f.prepare != nil {
		f.prepare(t, dir)
	}
	c := startCluster(t, sqlraftd, dir, 3, f.flags...)
	t.Cleanup(func() { // runs before the cluster stops and its directory goes
		if t.Failed() {
			saveLogs(t, c, out, f.name)
		}
	})
	setup(t, c)
	ctx, stop := context.WithCancel(context.Background())
	h := &history{start: time.Now()}
	rec := &setRecord{}
	var wg sync.WaitGroup
	for id := 0; id < 4; id++ {
		wg.Go(func() { registerClient(ctx, c, h, id, seed, levels) })
	}
	for id := 0; id < 3; id++ {
		wg.Go(func() { setClient(ctx, c, rec, id, seed) })
	}
	bank := &bankRecord{}
	for id := 0; id < 2; id++ {
		wg.Go(func() { bankTransfers(ctx, c, bank, id, seed) })
	}
	wg.Go(func() { bankReader(ctx, c, bank, seed) })
	sleep(context.Background(), tm.warmup)
	what, err := f.inject(context.Background(), c, rand.New(rand.NewPCG(seed, 7)), tm.hold)
	if err != nil {
		stop()
		wg.Wait()
		t.Fatalf("inject %s: %v", f.name, err)
	}
	t.Logf("fault: %s", what)
	sleep(context.Background(), tm.cooldown)
	stop()
	wg.Wait()
	c.healAll()
	c.waitMembers(3, 90*time.Second)
	sum, index := c.converge(90 * time.Second)
	r := result{scenario: f.name, fault: what, regOps: h.stats.ok + h.stats.unknown, regUnknown: h.stats.unknown,
		regFailed: h.stats.failed, setAcked: len(rec.acked), setUnknown: len(rec.unknowns), setFailed: len(rec.failed)}
	htmlPath := filepath.Join(out, f.name+"-history.html")
	r.linearizable, err = checkRegister(h, 60*time.Second, htmlPath)
	if r.linearizable == "NO" {
		saveLogs(t, c, out, f.name)
	}
	if err != nil {
		t.Errorf("visualize: %v", err)
	}
	var setErr error
	r.lost, r.phantom, setErr = checkSet(c, rec)
	bankErr := checkBank(c, bank)
	r.transfers, r.bankReads, r.badSums = bank.transfers, bank.reads, len(bank.badSums)
	r.elapsed = time.Since(began)
	resultsMu.Lock()
	results = append(results, r)
	resultsMu.Unlock()
	t.Logf("register: %d ops (%d unknown, %d failed and dropped), linearizable: %s; set: %d acked, %d unknown, %d failed; "+
		"lost %d, phantom %d; checksum %s…@%d", r.regOps, r.regUnknown, r.regFailed, r.linearizable,
		r.setAcked, r.setUnknown, r.setFailed, r.lost, r.phantom, sum[:12], index)
	t.Logf("errors that left outcomes unknown: %v", takeUnknownErrors())
	t.Logf("bank: %d transfers acknowledged (%d unknown), %d sums read at WEAK/LINEARIZABLE/STRONG, %d wrong",
		bank.transfers, bank.unknown, bank.reads, len(bank.badSums))
	if setErr != nil {
		t.Error(setErr)
	}
	if bankErr != nil {
		t.Error(bankErr)
	}
	r.html = htmlPath
	return r
}

// setup creates the tables the workloads use.
func setup(t *testing.T, c *cluster) {
	stmts := append(bankSetup(), &sqlraftv1.Statement{Sql: "CREATE TABLE reg(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)"},
		&sqlraftv1.Statement{Sql: "CREATE TABLE s(v INTEGER PRIMARY KEY)"})
	for k := 0; k < registerKeys; k++ {
		stmts = append(stmts, &sqlraftv1.Statement{Sql: "INSERT INTO reg VALUES(?, 0)", Params: []*sqlraftv1.Value{intValue(int64(k))}})
	}
	c.eventually(60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.db(c.leader(30*time.Second)).Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts, Transaction: true})
		return err
	})
}

func saveLogs(t *testing.T, c *cluster, out, name string) {
	for _, nd := range c.nodes {
		b, _ := os.ReadFile(nd.logPath)
		p := filepath.Join(out, name+"-"+nd.name+".log")
		if err := os.WriteFile(p, b, 0o644); err == nil {
			t.Logf("%s's log: %s", nd.name, p)
		}
	}
}

// writeMatrix prints the matrix and writes it to out/matrix.md.
func writeMatrix(t *testing.T, out string) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var b strings.Builder
	b.WriteString("| scenario | fault injected | register ops (unknown) | linearizable | set acked / unknown / failed | lost | phantom " +
		"| bank transfers / sums read / wrong | time |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d (%d) | %s | %d / %d / %d | %d | %d | %d / %d / %d | %.0f s |\n", r.scenario, r.fault,
			r.regOps, r.regUnknown, r.linearizable, r.setAcked, r.setUnknown, r.setFailed, r.lost, r.phantom,
			r.transfers, r.bankReads, r.badSums, r.elapsed.Seconds())
	}
	t.Logf("matrix (seed %d):\n%s", seed(), b.String())
	os.WriteFile(filepath.Join(out, "matrix.md"), []byte(b.String()), 0o644)
}

// TestCheckerCatchesStaleReads is the suite's canary: the register read at
// NONE (a node's local copy, no leader check) while the leader is
// partitioned from the followers must give a history porcupine rejects.
// If it passed, the checks above could not be trusted to catch a stale read.
func TestCheckerCatchesStaleReads(t *testing.T) {
	var partition fault
	for _, f := range faults {
		if f.name == "partition-leader" {
			partition = f
		}
	}
	partition.name = "canary-stale-reads"
	r := runScenario(t, partition, seed(), outDir(t), []string{"NONE"})
	t.Logf("NONE reads under a partition: linearizable %s (%d register ops)", r.linearizable, r.regOps)
	if r.linearizable != "NO" {
		t.Fatalf("porcupine accepted a history of NONE reads under a partition (%s): the checker would miss stale reads", r.linearizable)
	}
}
