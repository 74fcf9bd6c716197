package hostile

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// The victim's bounds. They are generous on purpose: they catch a victim
// that stalls (a hostile client holding a lock, filling a queue, wedging
// the log), not one that merely slows down on a loaded machine. On a 2-core
// machine loaded by other work the cluster sometimes loses its leader
// without any hostile client (a follower misses heartbeats for the 2 s
// timeout); a victim operation then waits out the election, retrying
// NO_LEADER, for up to several seconds.
const (
	// maxVictimP99 bounds the victim's p99 latency while the hostile client
	// runs: an election or two, not a stall.
	maxVictimP99 = 10 * time.Second
	// minVictimOps is the least number of operations the victim must
	// complete while the hostile client runs; the hostile window lasts until
	// it has, up to maxHostileWindow.
	minVictimOps = 10
	// maxHostileWindow bounds the hostile window.
	maxHostileWindow = 30 * time.Second
	// victimOpTimeout bounds one victim operation, retries included; an
	// operation that takes longer fails the test.
	victimOpTimeout = 30 * time.Second
)

// window is how long the baseline and the hostile windows last.
func window() time.Duration {
	if testing.Short() {
		return 2 * time.Second
	}
	return 4 * time.Second
}

// sample is one victim operation: when it ended, how long it took, retries
// included, and how many attempts it retried.
type sample struct {
	end     time.Time
	took    time.Duration
	write   bool
	retries int
}

// victim runs a closed loop of small writes and linearizable point reads
// against one node, on a connection of its own, and records every
// operation.
type victim struct {
	t    *testing.T
	conn *grpc.ClientConn
	db   sqlraftv1.DatabaseServiceClient
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	samples []sample
	errs    []error
}

// startVictim creates the victim's table and starts its loop against node n.
func startVictim(t *testing.T, n *servertest.Node) *victim {
	t.Helper()
	exec(t, n, st("CREATE TABLE IF NOT EXISTS victim(k INTEGER PRIMARY KEY, v TEXT)"))
	conn := dial(t, n.GRPCAddr)
	v := &victim{t: t, conn: conn, db: sqlraftv1.NewDatabaseServiceClient(conn),
		stop: make(chan struct{}), done: make(chan struct{})}
	go v.loop()
	t.Cleanup(v.halt) // also when the test fails before measure halts it
	return v
}

// loop writes a row with a key of its own (INSERT OR IGNORE, so a retry
// after an unknown outcome is safe), then reads it back at LINEARIZABLE,
// which must see it, until stopped.
func (v *victim) loop() {
	defer close(v.done)
	for k := int64(1); ; k++ {
		select {
		case <-v.stop:
			return
		default:
		}
		v.op(true, func(ctx context.Context) error {
			_, err := v.db.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
				st("INSERT OR IGNORE INTO victim(k, v) VALUES(?, ?)", integer(k), text(strings.Repeat("v", 64)))}})
			return err
		})
		v.op(false, func(ctx context.Context) error {
			resp, err := v.db.Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
				st("SELECT v FROM victim WHERE k = ?", integer(k))},
				Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
			if err == nil && len(resp.GetResults()[0].GetRows()) != 1 {
				return fmt.Errorf("a linearizable read of row %d, written before, found %d rows (%s)", k,
					len(resp.GetResults()[0].GetRows()), resp.GetResults()[0].GetError())
			}
			return err
		})
	}
}

// op runs one operation as a careful client does (retrying what may be
// retried) and records how long it took, or its error.
func (v *victim) op(write bool, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), victimOpTimeout)
	defer cancel()
	start, attempts := time.Now(), 0
	err := servertest.Retry(v.t, ctx, servertest.Idempotent, func(ctx context.Context) error {
		attempts++
		return fn(ctx)
	})
	end := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.errs = append(v.errs, fmt.Errorf("at %s: %w", end.Format("15:04:05.000"), err))
		return
	}
	v.samples = append(v.samples, sample{end: end, took: end.Sub(start), write: write, retries: attempts - 1})
}

// halt stops the loop, closes the victim's connection and fails the test if
// the victim met an error that a client could not retry.
func (v *victim) halt() {
	first := false
	v.once.Do(func() { first = true })
	if !first {
		return
	}
	close(v.stop)
	<-v.done
	v.conn.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, err := range v.errs {
		v.t.Errorf("victim: %v", err)
	}
}

// ops is the number of operations that ended since from.
func (v *victim) ops(from time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for i := len(v.samples) - 1; i >= 0 && !v.samples[i].end.Before(from); i-- {
		n++
	}
	return n
}

// stats summarises the operations that ended in [from, to).
func (v *victim) stats(from, to time.Time) stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := stats{window: to.Sub(from)}
	var all, writes, reads []time.Duration
	for _, x := range v.samples {
		if x.end.Before(from) || !x.end.Before(to) {
			continue
		}
		all = append(all, x.took)
		s.retries += x.retries
		if x.write {
			writes = append(writes, x.took)
		} else {
			reads = append(reads, x.took)
		}
	}
	s.ops = len(all)
	s.p50, s.p99, s.max = percentile(all, 50), percentile(all, 99), percentile(all, 100)
	s.writeP99, s.readP99 = percentile(writes, 99), percentile(reads, 99)
	return s
}

// stats describe the victim's operations in one window.
type stats struct {
	window            time.Duration
	ops, retries      int
	p50, p99, max     time.Duration
	writeP99, readP99 time.Duration
}

func (s stats) opsPerSec() float64 { return float64(s.ops) / s.window.Seconds() }

func (s stats) String() string {
	return fmt.Sprintf("%d ops in %v (%.0f ops/s), p50 %v, p99 %v (writes %v, reads %v), max %v, %d retried attempts", s.ops,
		s.window.Round(time.Millisecond), s.opsPerSec(), ms(s.p50), ms(s.p99), ms(s.writeP99), ms(s.readP99), ms(s.max), s.retries)
}

// percentile returns the p-th percentile (nearest rank) of ds, or 0.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

// ms rounds d for printing.
func ms(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// result is one case's measurement, for the summary table.
type result struct {
	name, outcome, did string
	base, hostile      stats
}

var (
	resultsMu sync.Mutex
	results   []result
)

// span is the hostile window: it lasts the window's length, and longer,
// up to maxHostileWindow, until the victim has completed minVictimOps
// operations in it.
type span struct {
	v     *victim
	start time.Time
}

// over reports whether the hostile window has ended.
func (sp *span) over() bool {
	d := time.Since(sp.start)
	return d >= window() && (sp.v.ops(sp.start) >= minVictimOps || d >= maxHostileWindow)
}

// wait returns when the hostile window has ended.
func (sp *span) wait() {
	for !sp.over() {
		time.Sleep(20 * time.Millisecond)
	}
}

// measure runs the victim against c's leader: a short warm-up, a baseline
// window with no hostile client, then the hostile window (a span), in which
// hostile runs until the span is over and says what it did. It logs both
// windows, records them for the summary table, and checks the victim's
// bounds. outcome says what the hostile client got.
func measure(t *testing.T, c *servertest.Cluster, name, outcome string, hostile func(sp *span) (did string)) (base, during stats) {
	t.Helper()
	v := startVictim(t, c.Leader())
	time.Sleep(window() / 4) // warm-up: connections, statement caches
	t0 := time.Now()
	time.Sleep(window())
	t1 := time.Now()
	did := hostile(&span{v: v, start: t1})
	t2 := time.Now()
	v.halt()
	base, during = v.stats(t0, t1), v.stats(t1, t2)
	t.Logf("%s: the hostile client %s", name, did)
	t.Logf("%s: victim baseline: %v", name, base)
	t.Logf("%s: victim with the hostile client: %v", name, during)
	t.Logf("%s: ratios hostile/baseline: p50 %.2f, p99 %.2f, ops/s %.2f", name, ratio(during.p50, base.p50),
		ratio(during.p99, base.p99), during.opsPerSec()/base.opsPerSec())
	resultsMu.Lock()
	results = append(results, result{name: name, outcome: outcome, did: did, base: base, hostile: during})
	resultsMu.Unlock()
	if during.ops < minVictimOps {
		t.Errorf("the victim completed %d operations in %v with the hostile client, want at least %d", during.ops,
			during.window.Round(time.Millisecond), minVictimOps)
	}
	if during.p99 > maxVictimP99 {
		t.Errorf("the victim's p99 with the hostile client is %v, over the bound of %v", during.p99, maxVictimP99)
	}
	return base, during
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// TestMain prints the summary table of every case that ran.
func TestMain(m *testing.M) {
	code := m.Run()
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) > 0 {
		fmt.Println("| case | the hostile client gets | it did, in the hostile window | victim p50 base → hostile | victim p99 base → hostile | victim ops/s base → hostile (ratio) | victim retries base, hostile |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
		for _, r := range results {
			fmt.Printf("| %s | %s | %s | %v → %v | %v → %v | %.0f → %.0f (%.2f) | %d, %d |\n", r.name, r.outcome, r.did,
				ms(r.base.p50), ms(r.hostile.p50), ms(r.base.p99), ms(r.hostile.p99), r.base.opsPerSec(), r.hostile.opsPerSec(),
				r.hostile.opsPerSec()/r.base.opsPerSec(), r.base.retries, r.hostile.retries)
		}
	}
	os.Exit(code)
}

// dial opens a client connection of its own to addr, closed when the test
// ends.
func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
