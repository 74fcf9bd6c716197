//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// The register workload: registerKeys integer registers (rows of reg),
// read at LINEARIZABLE or STRONG, written, and compare-and-set with
// UPDATE … WHERE v = ?. Every operation is recorded with client-side
// invoke and return times and checked with porcupine, one key at a time
// (the keys are independent registers, so each partition stays small).

const registerKeys = 8

type regOp int

const (
	opRead regOp = iota
	opWrite
	opCAS
)

type regInput struct {
	Op     regOp
	Key    int
	Value  int64 // written (write, CAS)
	Expect int64 // CAS
	Level  string
}

type regOutput struct {
	Value   int64 // read
	OK      bool  // CAS applied
	Unknown bool  // the outcome is unknown: it may or may not have happened
}

// registerModel is a map of independent registers, partitioned by key. An
// operation whose outcome is unknown has its return time at infinity: it
// may take effect at any point after its call, including never observed.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for k := 0; k < registerKeys; k++ {
			if len(byKey[k]) > 0 {
				out = append(out, byKey[k])
			}
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(int64), input.(regInput), output.(regOutput)
		switch in.Op {
		case opRead:
			return out.Value == s, s
		case opWrite:
			return true, in.Value
		default: // CAS
			if out.Unknown {
				if s == in.Expect {
					return true, in.Value
				}
				return true, s
			}
			if out.OK {
				return s == in.Expect, in.Value
			}
			return s != in.Expect, s
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch in.Op {
		case opRead:
			return fmt.Sprintf("read(k%d, %s) → %d", in.Key, in.Level, out.Value)
		case opWrite:
			return fmt.Sprintf("write(k%d, %d)%s", in.Key, in.Value, unknownMark(out.Unknown))
		default:
			return fmt.Sprintf("cas(k%d, %d → %d) → %v%s", in.Key, in.Expect, in.Value, out.OK, unknownMark(out.Unknown))
		}
	},
}

func unknownMark(u bool) string {
	if u {
		return " ?"
	}
	return ""
}

// history collects operations from concurrent clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	stats opStats
}

type opStats struct{ ok, failed, unknown int }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation, outcome outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch outcome {
	case outcomeOK:
		h.stats.ok++
		h.ops = append(h.ops, op)
	case outcomeUnknown:
		h.stats.unknown++
		op.Return = math.MaxInt64
		h.ops = append(h.ops, op)
	default:
		h.stats.failed++ // did not happen: not part of the history
	}
}

// registerClient runs register operations against the cluster until ctx
// ends, choosing node, key and operation from its own seeded source.
// readLevels are the levels the register reads at; checked reads must be
// linearizable. The canary test reads at NONE instead, to show the checker
// catches stale reads.
var readLevels = []string{"LINEARIZABLE", "STRONG"}

func registerClient(ctx context.Context, c *cluster, h *history, id int, seed uint64, levels []string) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	last := map[int]int64{} // the last value this client saw per key
	seq := int64(0)
	for ctx.Err() == nil {
		nd := c.nodes[rng.IntN(len(c.nodes))]
		k := rng.IntN(registerKeys)
		seq++
		in := regInput{Key: k, Value: int64(id+1)*10_000_000 + seq}
		switch p := rng.IntN(10); {
		case p < 4:
			in.Op, in.Level = opRead, levels[rng.IntN(len(levels))]
		case p < 7:
			in.Op = opWrite
		default:
			in.Op, in.Expect = opCAS, last[k]
		}
		call := h.now()
		out, oc := runRegisterOp(ctx, c, nd, in)
		if ctx.Err() != nil && oc != outcomeOK {
			oc = outcomeUnknown // cut off by the end of the run
			if in.Op == opRead {
				oc = outcomeFailed
			}
		}
		if oc == outcomeOK {
			switch {
			case in.Op == opRead:
				last[k] = out.Value
			case in.Op == opWrite, out.OK:
				last[k] = in.Value
			}
		}
		if oc == outcomeUnknown {
			out.Unknown = true
		}
		h.add(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: h.now()}, oc)
		if oc != outcomeOK {
			sleep(ctx, backoff) // as a real client would, before trying again elsewhere
		}
	}
}

func runRegisterOp(ctx context.Context, c *cluster, nd *node, in regInput) (regOutput, outcome) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	switch in.Op {
	case opRead:
		level := sqlraftv1.ReadConsistency(sqlraftv1.ReadConsistency_value["READ_CONSISTENCY_"+in.Level])
		resp, err := c.db(nd).Query(octx, &sqlraftv1.QueryRequest{Consistency: level, Statements: []*sqlraftv1.Statement{{
			Sql: "SELECT v FROM reg WHERE k = ?", Params: []*sqlraftv1.Value{intValue(int64(in.Key))}}}})
		if err != nil || len(resp.GetResults()) != 1 || resp.GetResults()[0].GetError() != "" || len(resp.GetResults()[0].GetRows()) != 1 {
			return regOutput{}, outcomeFailed // a failed read has no effect
		}
		return regOutput{Value: resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger()}, outcomeOK
	case opWrite:
		n, oc := execute(octx, c, nd, "UPDATE reg SET v = ? WHERE k = ?", intValue(in.Value), intValue(int64(in.Key)))
		return regOutput{OK: n == 1}, oc
	default:
		n, oc := execute(octx, c, nd, "UPDATE reg SET v = ? WHERE k = ? AND v = ?",
			intValue(in.Value), intValue(int64(in.Key)), intValue(in.Expect))
		return regOutput{OK: n == 1}, oc
	}
}

// checkRegister checks h with porcupine; on failure it writes the
// visualization to path. It reports "yes", "NO" or "unknown (timeout)".
func checkRegister(h *history, timeout time.Duration, path string) (string, error) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
	switch res {
	case porcupine.Ok:
		return "yes", nil
	case porcupine.Illegal:
		return "NO", porcupine.VisualizePath(registerModel, info, path)
	}
	return "unknown (timeout)", nil
}
