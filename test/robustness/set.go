//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// The append-only set workload: clients insert unique integers into s.
// After the run every acknowledged value must be on every node, no value
// reported as certainly failed may be anywhere, and the nodes' checksums
// must agree.

type setRecord struct {
	mu                      sync.Mutex
	acked, failed, unknowns []int64
}

func setClient(ctx context.Context, c *cluster, rec *setRecord, id int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(1000+id)))
	for seq := int64(1); ctx.Err() == nil; seq++ {
		v := int64(id+1)*10_000_000 + seq
		nd := c.nodes[rng.IntN(len(c.nodes))]
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		_, oc := execute(octx, c, nd, "INSERT INTO s(v) VALUES(?)", intValue(v))
		cancel()
		if ctx.Err() != nil && oc == outcomeFailed {
			oc = outcomeUnknown
		}
		rec.mu.Lock()
		switch oc {
		case outcomeOK:
			rec.acked = append(rec.acked, v)
		case outcomeFailed:
			rec.failed = append(rec.failed, v)
		default:
			rec.unknowns = append(rec.unknowns, v)
		}
		rec.mu.Unlock()
		if oc != outcomeOK {
			sleep(ctx, backoff)
		}
	}
}

// checkSet reads s on every node (NONE: the node's own copy, after the
// cluster converged) and returns the lost and phantom values.
func checkSet(c *cluster, rec *setRecord) (lost, phantom int, err error) {
	for _, nd := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, qerr := c.db(nd).Query(ctx, &sqlraftv1.QueryRequest{Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE,
			Statements: []*sqlraftv1.Statement{{Sql: "SELECT v FROM s"}}})
		cancel()
		if qerr != nil {
			return 0, 0, fmt.Errorf("%s: %w", nd.name, qerr)
		}
		have := map[int64]bool{}
		for _, r := range resp.GetResults()[0].GetRows() {
			have[r.GetValues()[0].GetInteger()] = true
		}
		for _, v := range rec.acked {
			if !have[v] {
				lost++
			}
		}
		for _, v := range rec.failed {
			if have[v] {
				phantom++
			}
		}
		if lost+phantom > 0 {
			return lost, phantom, fmt.Errorf("%s: %d acknowledged values missing (e.g. %v), %d failed values present",
				nd.name, lost, firstMissing(rec.acked, have), phantom)
		}
	}
	return 0, 0, nil
}

func firstMissing(vals []int64, have map[int64]bool) []int64 {
	var out []int64
	for _, v := range vals {
		if !have[v] {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), 5)]
}
