//go:build robustness

package robustness

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// opTimeout bounds every workload operation: an operation still waiting
// when it passes has an unknown outcome (for a write) or failed (a read).
const opTimeout = 2 * time.Second

// backoff is the pause after an operation that did not succeed.
const backoff = 100 * time.Millisecond

// outcome classifies what a client knows about an operation.
type outcome int

const (
	outcomeOK      outcome = iota // acknowledged: it happened, with this result
	outcomeFailed                 // it certainly did not happen
	outcomeUnknown                // it may or may not have happened
)

// classify says what an error tells a client about a write. Only errors
// the API documents as "nothing was proposed" are failures: a statement
// refused before it ran, NO_LEADER, NOT_LEADER (forwarding refused). A
// timeout, a broken connection or OUTCOME_UNKNOWN may hide an applied
// write.
func classify(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	oc := classifyStatus(status.Convert(err))
	if oc == outcomeUnknown {
		tallyUnknown(err)
	}
	return oc
}

// dialFailures are grpc-go's messages for a connection that never became
// ready: no request was sent on it.
var dialFailures = []string{"Error while dialing", "error reading server preface", "connection refused"}

func classifyStatus(st *status.Status) outcome {
	switch st.Code() {
	case codes.InvalidArgument, codes.ResourceExhausted, codes.FailedPrecondition, codes.PermissionDenied,
		codes.Unauthenticated, codes.Unimplemented:
		return outcomeFailed
	case codes.Unavailable:
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "NO_LEADER" {
				return outcomeFailed
			}
		}
		for _, m := range dialFailures {
			if strings.Contains(st.Message(), m) {
				return outcomeFailed
			}
		}
	}
	return outcomeUnknown
}

// unknownErrors counts the errors that left an outcome unknown, by code and
// the start of the message, for the scenario's log.
var unknownErrors = struct {
	sync.Mutex
	m map[string]int
}{m: map[string]int{}}

func tallyUnknown(err error) {
	st := status.Convert(err)
	msg := st.Message()
	if len(msg) > 70 {
		msg = msg[:70]
	}
	unknownErrors.Lock()
	unknownErrors.m[st.Code().String()+": "+msg]++
	unknownErrors.Unlock()
}

// takeUnknownErrors returns and resets the tally.
func takeUnknownErrors() map[string]int {
	unknownErrors.Lock()
	defer unknownErrors.Unlock()
	m := unknownErrors.m
	unknownErrors.m = map[string]int{}
	return m
}

// execute runs one statement through nd and returns its rows affected.
func execute(ctx context.Context, c *cluster, nd *node, sql string, params ...*sqlraftv1.Value) (int64, outcome) {
	resp, err := c.db(nd).Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{Sql: sql, Params: params}}})
	if oc := classify(err); oc != outcomeOK {
		return 0, oc
	}
	r := resp.GetResults()[0]
	if r.GetError() != "" {
		return 0, outcomeFailed // applied as a failed statement: no effect
	}
	return r.GetRowsAffected(), outcomeOK
}

func intValue(v int64) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: v}}
}
