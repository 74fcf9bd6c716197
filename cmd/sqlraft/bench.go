package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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
	txSize      int    // statements per request with --op tx and bulk
	backupFile  string // where --op backup writes ("": a temporary file)
	// checksumPollers and statusPollers call ClusterService.Checksum and
	// Status in a loop beside the workload, spread over the targets, to
	// measure what observability costs the workload.
	checksumPollers int
	statusPollers   int
	pollInterval    time.Duration // pause between one poller's calls
}

// benchOps lists --op's values.
var benchOps = []string{"write", "read", "mix", "tx", "bulk", "backup"}

// Default statements per request of --op tx and --op bulk.
const (
	defaultTxSize   = 100
	defaultBulkSize = 1000
)

func benchCommand(g *globals) *cobra.Command {
	var bc benchConfig
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive a running cluster with concurrent clients and report throughput and latency percentiles",
		Long: `bench runs --clients concurrent clients for --duration against the cluster,
each sending its next request when the last returns. --op picks the request:

  write   one INSERT of a --value-bytes TEXT value
  read    one SELECT of a row by primary key (from --rows rows) at --consistency
  mix     reads (--read-ratio of them) and writes
  tx      --tx-size INSERTs in one transaction (default 100); also statements/s
  bulk    as tx with --tx-size 1000 by default; also rows/s
  backup  one Backup call saved (and synced) to --backup-file; seconds and MB/s

It prints requests/s and the p50/p99 latency of successful requests (a
request whose statement failed counts as an error); -o json prints the same
as one JSON object. It uses the table sqlraft_bench. Point --targets at a
follower to measure reads there (with --consistency none they are served
by the follower; other levels are forwarded to the leader).

--checksum-pollers and --status-pollers add clients that call Checksum and
Status for the whole run, back to back (as monitoring would at its worst) or
every --poll-interval; the result then also counts their calls.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(bc.targets) == 0 {
				bc.targets = []string{g.addr}
			}
			if bc.op == "bulk" && !cmd.Flags().Changed("tx-size") {
				bc.txSize = defaultBulkSize
			}
			res, err := runBench(cmd.Context(), g, bc)
			if err != nil {
				return err
			}
			return res.print(cmd.OutOrStdout(), g.output)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&bc.targets, "targets", nil, "nodes to spread clients over (default: --addr)")
	f.IntVarP(&bc.clients, "clients", "c", 1, "concurrent clients")
	f.DurationVarP(&bc.duration, "duration", "d", 10*time.Second, "how long to run")
	f.StringVar(&bc.op, "op", "write", strings.Join(benchOps, ", "))
	f.StringVar(&bc.consistency, "consistency", "linearizable", "read consistency: none, weak, linearizable or strong")
	f.Float64Var(&bc.readRatio, "read-ratio", 0.8, "share of reads with --op mix")
	f.IntVar(&bc.rows, "rows", 1000, "rows to make sure exist before reading")
	f.IntVar(&bc.valueBytes, "value-bytes", 64, "size of each written TEXT value")
	f.IntVar(&bc.txSize, "tx-size", defaultTxSize, "INSERTs per transaction with --op tx (--op bulk: 1000 unless set)")
	f.StringVar(&bc.backupFile, "backup-file", "", "file --op backup writes, replaced if it exists (default: a temporary file, removed)")
	f.IntVar(&bc.checksumPollers, "checksum-pollers", 0, "clients calling Checksum back to back beside the workload")
	f.IntVar(&bc.statusPollers, "status-pollers", 0, "clients calling Status back to back beside the workload")
	f.DurationVar(&bc.pollInterval, "poll-interval", 0, "pause between one poller's calls (0: back to back)")
	return cmd
}

func (bc benchConfig) validate() error {
	if !slices.Contains(benchOps, bc.op) {
		return fail("--op must be one of %s", strings.Join(benchOps, ", "))
	}
	if bc.clients < 1 {
		return fail("--clients must be at least 1")
	}
	if (bc.op == "tx" || bc.op == "bulk") && bc.txSize < 1 {
		return fail("--tx-size must be at least 1")
	}
	if bc.rows < 1 {
		return fail("--rows must be at least 1")
	}
	return nil
}

func runBench(ctx context.Context, g *globals, bc benchConfig) (*benchResult, error) {
	if err := bc.validate(); err != nil {
		return nil, err
	}
	level, err := parseLevel(bc.consistency)
	if err != nil {
		return nil, err
	}
	conns := make([]*grpc.ClientConn, len(bc.targets))
	for i, t := range bc.targets {
		gg := *g
		gg.addr = strings.TrimSpace(t)
		if conns[i], err = gg.dial(); err != nil {
			return nil, err
		}
		defer conns[i].Close()
	}
	if bc.op == "backup" {
		return runBackupBench(ctx, g, bc, conns[0])
	}
	if err := benchSetup(ctx, g, sqlraftv1.NewDatabaseServiceClient(conns[0]), bc); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	return runClients(ctx, g, bc, level, conns), nil
}

// runClients runs bc.clients closed-loop clients, spread over conns, until
// bc.duration has passed, with the pollers beside them.
func runClients(ctx context.Context, g *globals, bc benchConfig, level sqlraftv1.ReadConsistency,
	conns []*grpc.ClientConn) *benchResult {
	lat := make([][]time.Duration, bc.clients)
	units := make([]int64, bc.clients)
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
			op := newBenchClient(g, bc, level, sqlraftv1.NewDatabaseServiceClient(conns[c%len(conns)]),
				rand.New(rand.NewPCG(uint64(c), 7)))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx)
				if err != nil {
					errs[c]++
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
				units[c] += int64(n)
			}
		}(c)
	}
	wg.Wait()
	res := summarise(bc, lat, units, errs, time.Since(start), firstErr)
	res.polls = polls
	return res
}

func summarise(bc benchConfig, lat [][]time.Duration, units []int64, errs []int, elapsed time.Duration,
	firstErr error) *benchResult {
	var all []time.Duration
	r := &benchResult{cfg: bc, elapsed: elapsed, firstErr: firstErr}
	for c := range lat {
		all = append(all, lat[c]...)
		r.errors += errs[c]
		r.units += units[c]
	}
	r.ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return r
}
