package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// benchConfig is what a bench run does.
type benchConfig struct {
	targets     []string
	clients     int
	duration    time.Duration
	op          string
	consistency string
	readRatio   float64
	rows        int
	valueBytes  int
	// checksumPollers and statusPollers call ClusterService.Checksum and
	// Status in a loop beside the workload, spread over the targets, to
	// measure what observability costs the workload.
	checksumPollers int
	statusPollers   int
	pollInterval    time.Duration // pause between one poller's calls
}

func benchCommand(g *globals) *cobra.Command {
	var bc benchConfig
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive a running cluster with concurrent clients and report ops/s and latency percentiles",
		Long: `bench runs --clients concurrent clients for --duration against the cluster, each
sending one statement per request: writes (INSERT of one row), reads (SELECT of
one row by primary key at --consistency) or a mix. It prints throughput and the
p50/p99 latency of successful requests. It uses the table sqlraft_bench.

--checksum-pollers and --status-pollers add clients that call Checksum and
Status for the whole run, back to back (as monitoring would at its worst) or
every --poll-interval; the result then also counts their calls.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(bc.targets) == 0 {
				bc.targets = []string{g.addr}
			}
			res, err := runBench(cmd.Context(), g, bc)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&bc.targets, "targets", nil, "nodes to spread clients over (default: --addr)")
	f.IntVarP(&bc.clients, "clients", "c", 1, "concurrent clients")
	f.DurationVarP(&bc.duration, "duration", "d", 10*time.Second, "how long to run")
	f.StringVar(&bc.op, "op", "write", "write, read or mix")
	f.StringVar(&bc.consistency, "consistency", "linearizable", "read consistency: none, weak, linearizable or strong")
	f.Float64Var(&bc.readRatio, "read-ratio", 0.8, "share of reads with --op mix")
	f.IntVar(&bc.rows, "rows", 1000, "rows to make sure exist before reading")
	f.IntVar(&bc.valueBytes, "value-bytes", 100, "size of each written value")
	f.IntVar(&bc.checksumPollers, "checksum-pollers", 0, "clients calling Checksum back to back beside the workload")
	f.IntVar(&bc.statusPollers, "status-pollers", 0, "clients calling Status back to back beside the workload")
	f.DurationVar(&bc.pollInterval, "poll-interval", 0, "pause between one poller's calls (0: back to back)")
	return cmd
}

// benchResult summarises a run.
type benchResult struct {
	cfg      benchConfig
	ops      int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	firstErr error
	polls    pollCounts
}

func (r benchResult) String() string {
	s := fmt.Sprintf("op=%s consistency=%s clients=%d targets=%d ops=%d errors=%d duration=%.1fs ops/s=%.0f p50=%s p99=%s",
		r.cfg.op, r.cfg.consistency, r.cfg.clients, len(r.cfg.targets), r.ops, r.errors, r.elapsed.Seconds(),
		float64(r.ops)/r.elapsed.Seconds(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	if r.cfg.checksumPollers+r.cfg.statusPollers > 0 {
		s += fmt.Sprintf(" checksum-pollers=%d checksums=%d status-pollers=%d statuses=%d poll-errors=%d poll-interval=%s",
			r.cfg.checksumPollers, r.polls.checksums.Load(), r.cfg.statusPollers, r.polls.statuses.Load(), r.polls.errors.Load(),
			r.cfg.pollInterval)
	}
	if r.firstErr != nil {
		s += "\nfirst error: " + r.firstErr.Error()
	}
	return s
}

func runBench(ctx context.Context, g *globals, bc benchConfig) (benchResult, error) {
	level, err := parseLevel(bc.consistency)
	if err != nil {
		return benchResult{}, err
	}
	if bc.op != "write" && bc.op != "read" && bc.op != "mix" {
		return benchResult{}, fail("--op must be write, read or mix")
	}
	conns := make([]*grpc.ClientConn, len(bc.targets))
	for i, t := range bc.targets {
		gg := *g
		gg.addr = strings.TrimSpace(t)
		if conns[i], err = gg.dial(); err != nil {
			return benchResult{}, err
		}
		defer conns[i].Close()
	}
	if err := benchSetup(ctx, g, sqlraftv1.NewDatabaseServiceClient(conns[0]), bc); err != nil {
		return benchResult{}, fmt.Errorf("setup: %w", err)
	}
	value := strings.Repeat("x", bc.valueBytes)
	lat := make([][]time.Duration, bc.clients)
	errs := make([]int, bc.clients)
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	deadline := start.Add(bc.duration)
	var wg sync.WaitGroup
	polls := startPollers(ctx, g, bc, conns, deadline, &wg)
	for c := 0; c < bc.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			db := sqlraftv1.NewDatabaseServiceClient(conns[c%len(conns)])
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := benchOp(ctx, g, db, bc, level, rng, value)
				if err != nil {
					errs[c]++
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	res := summarise(bc, lat, errs, time.Since(start), firstErr)
	res.polls = polls
	return res, nil
}

// pollCounts counts the pollers' calls.
type pollCounts struct {
	checksums, statuses, errors *atomic.Uint64
}

// startPollers starts bc.checksumPollers and bc.statusPollers goroutines,
// spread over conns, that call until deadline; wg tracks them.
func startPollers(ctx context.Context, g *globals, bc benchConfig, conns []*grpc.ClientConn,
	deadline time.Time, wg *sync.WaitGroup) pollCounts {
	pc := pollCounts{checksums: new(atomic.Uint64), statuses: new(atomic.Uint64), errors: new(atomic.Uint64)}
	poll := func(i int, count *atomic.Uint64, call func(context.Context, sqlraftv1.ClusterServiceClient) error) {
		defer wg.Done()
		cl := sqlraftv1.NewClusterServiceClient(conns[i%len(conns)])
		for time.Now().Before(deadline) && ctx.Err() == nil {
			cctx, cancel := g.callContext(ctx)
			err := call(cctx, cl)
			cancel()
			if err != nil {
				pc.errors.Add(1)
				continue
			}
			count.Add(1)
			if bc.pollInterval > 0 {
				time.Sleep(bc.pollInterval)
			}
		}
	}
	for i := 0; i < bc.checksumPollers; i++ {
		wg.Add(1)
		go poll(i, pc.checksums, func(ctx context.Context, cl sqlraftv1.ClusterServiceClient) error {
			_, err := cl.Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			return err
		})
	}
	for i := 0; i < bc.statusPollers; i++ {
		wg.Add(1)
		go poll(i, pc.statuses, func(ctx context.Context, cl sqlraftv1.ClusterServiceClient) error {
			_, err := cl.Status(ctx, &sqlraftv1.StatusRequest{})
			return err
		})
	}
	return pc
}

func benchSetup(ctx context.Context, g *globals, db sqlraftv1.DatabaseServiceClient, bc benchConfig) error {
	cctx, cancel := g.callContext(ctx)
	defer cancel()
	_, err := db.Execute(cctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE IF NOT EXISTS sqlraft_bench(id INTEGER PRIMARY KEY, v TEXT)"},
		{Sql: `INSERT INTO sqlraft_bench(id, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		       SELECT i, 'seed' FROM n WHERE true ON CONFLICT(id) DO NOTHING`,
			Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: int64(bc.rows)}}}},
	}})
	return err
}

func benchOp(ctx context.Context, g *globals, db sqlraftv1.DatabaseServiceClient, bc benchConfig,
	level sqlraftv1.ReadConsistency, rng *rand.Rand, value string) error {
	cctx, cancel := g.callContext(ctx)
	defer cancel()
	read := bc.op == "read" || (bc.op == "mix" && rng.Float64() < bc.readRatio)
	if read {
		id := int64(rng.IntN(bc.rows) + 1)
		_, err := db.Query(cctx, &sqlraftv1.QueryRequest{Consistency: level, Statements: []*sqlraftv1.Statement{{
			Sql: "SELECT v FROM sqlraft_bench WHERE id = ?", Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: id}}}}}})
		return err
	}
	_, err := db.Execute(cctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{
		Sql: "INSERT INTO sqlraft_bench(v) VALUES(?)", Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Text{Text: value}}}}}})
	return err
}

func summarise(bc benchConfig, lat [][]time.Duration, errs []int, elapsed time.Duration, firstErr error) benchResult {
	var all []time.Duration
	r := benchResult{cfg: bc, elapsed: elapsed, firstErr: firstErr}
	for c := range lat {
		all = append(all, lat[c]...)
		r.errors += errs[c]
	}
	r.ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return r
}
