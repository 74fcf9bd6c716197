//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// The bank workload: bankAccounts accounts holding bankTotal between them.
// Transfer clients move money with one conditional UPDATE in a Request
// transaction (both rows or neither); a reader sums the balances at WEAK,
// LINEARIZABLE and STRONG. Any sum other than bankTotal, at any time, on any
// node, is a violation: a transaction seen half-applied, or applied twice.

const (
	bankAccounts = 5
	bankTotal    = bankAccounts * 100
)

const transferSQL = `UPDATE bank SET bal = bal + CASE WHEN id = ? THEN ? ELSE -? END
	WHERE id IN (?, ?) AND (SELECT bal FROM bank WHERE id = ?) >= ?`

type bankRecord struct {
	mu                        sync.Mutex
	transfers, unknown, reads int
	badSums                   []string
}

func bankSetup() []*sqlraftv1.Statement {
	var out []*sqlraftv1.Statement
	out = append(out, &sqlraftv1.Statement{Sql: "CREATE TABLE bank(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)"})
	for i := 0; i < bankAccounts; i++ {
		out = append(out, &sqlraftv1.Statement{Sql: "INSERT INTO bank VALUES(?, 100)", Params: []*sqlraftv1.Value{intValue(int64(i))}})
	}
	return out
}

func bankTransfers(ctx context.Context, c *cluster, rec *bankRecord, id int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(2000+id)))
	for ctx.Err() == nil {
		from := rng.IntN(bankAccounts)
		to := (from + 1 + rng.IntN(bankAccounts-1)) % bankAccounts
		amt := int64(1 + rng.IntN(20))
		nd := c.nodes[rng.IntN(len(c.nodes))]
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		p := []*sqlraftv1.Value{intValue(int64(to)), intValue(amt), intValue(amt), intValue(int64(from)), intValue(int64(to)),
			intValue(int64(from)), intValue(amt)}
		_, err := c.db(nd).Request(octx, &sqlraftv1.RequestRequest{Transaction: true,
			Statements: []*sqlraftv1.Statement{{Sql: transferSQL, Params: p}}})
		cancel()
		oc := classify(err)
		rec.mu.Lock()
		switch oc {
		case outcomeOK:
			rec.transfers++
		case outcomeUnknown:
			rec.unknown++
		}
		rec.mu.Unlock()
		if oc != outcomeOK {
			sleep(ctx, backoff)
		}
	}
}

var bankLevels = []sqlraftv1.ReadConsistency{sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}

func bankReader(ctx context.Context, c *cluster, rec *bankRecord, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3000))
	for ctx.Err() == nil {
		nd := c.nodes[rng.IntN(len(c.nodes))]
		level := bankLevels[rng.IntN(len(bankLevels))]
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		sum, err := bankSum(octx, c, nd, level)
		cancel()
		if err != nil {
			sleep(ctx, backoff)
			continue
		}
		rec.mu.Lock()
		rec.reads++
		if sum != bankTotal {
			rec.badSums = append(rec.badSums, fmt.Sprintf("%d at %s via %s", sum, level, nd.name))
		}
		rec.mu.Unlock()
	}
}

func bankSum(ctx context.Context, c *cluster, nd *node, level sqlraftv1.ReadConsistency) (int64, error) {
	resp, err := c.db(nd).Query(ctx, &sqlraftv1.QueryRequest{Consistency: level,
		Statements: []*sqlraftv1.Statement{{Sql: "SELECT SUM(bal), COUNT(*) FROM bank"}}})
	if err != nil {
		return 0, err
	}
	r := resp.GetResults()[0]
	if r.GetError() != "" || len(r.GetRows()) != 1 {
		return 0, fmt.Errorf("sum: %q", r.GetError())
	}
	return r.GetRows()[0].GetValues()[0].GetInteger(), nil
}

// checkBank sums every node's own copy (NONE) after convergence.
func checkBank(c *cluster, rec *bankRecord) error {
	for _, nd := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sum, err := bankSum(ctx, c, nd, sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", nd.name, err)
		}
		if sum != bankTotal {
			rec.badSums = append(rec.badSums, fmt.Sprintf("%d at the end on %s", sum, nd.name))
		}
	}
	if len(rec.badSums) > 0 {
		return fmt.Errorf("the bank's total changed: %v", rec.badSums[:min(len(rec.badSums), 5)])
	}
	return nil
}
