package servertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server"
)

// Repeat says whether an operation may be repeated when its outcome is
// unknown.
type Repeat int

const (
	// NotIdempotent operations are retried only when the cluster says
	// nothing was proposed (NO_LEADER). An OUTCOME_UNKNOWN is returned to
	// the caller: the write may have happened, and repeating it could
	// apply it twice.
	NotIdempotent Repeat = iota
	// Idempotent operations are also retried after OUTCOME_UNKNOWN: applying
	// them twice leaves the same state as once (INSERT OR IGNORE on a key
	// the test chose, an UPDATE that sets fixed values, a read), or the
	// caller checks what happened before it repeats them.
	Idempotent
)

// RetryTimeout bounds Retry when ctx has no deadline.
const RetryTimeout = 60 * time.Second

// Reason returns the google.rpc.ErrorInfo reason of a status error (see
// server.ReasonNoLeader and the others), or "" when it carries none.
func Reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Retryable reports whether a client may send the request that failed with
// err again: UNAVAILABLE with reason NO_LEADER always (no leader was known,
// so nothing was proposed), and UNAVAILABLE with reason OUTCOME_UNKNOWN
// (leadership moved while the write was in flight) only when repeat is
// Idempotent. Every other error is the answer.
func Retryable(err error, repeat Repeat) bool {
	if status.Code(err) != codes.Unavailable {
		return false
	}
	switch Reason(err) {
	case server.ReasonNoLeader:
		return true
	case server.ReasonOutcomeUnknown:
		return repeat == Idempotent
	}
	return false
}

// Retry runs op as a careful client of a cluster that may be electing a
// leader would: it repeats op while op fails with an error Retryable
// allows for repeat, pausing between attempts (100 ms, doubling up to 1 s),
// until op succeeds, fails otherwise, or ctx ends (RetryTimeout when ctx
// has no deadline). Each attempt gets ctx. It returns nil on success. A
// failure is never hidden: the error returned wraps op's last error (so
// status.Code and errors.Is see it) and says how many attempts were made
// and why the earlier ones were retried. Every retry is logged on t.
func Retry(t testing.TB, ctx context.Context, repeat Repeat, op func(ctx context.Context) error) error {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, RetryTimeout)
		defer cancel()
	}
	start, pause := time.Now(), 100*time.Millisecond
	retried := map[string]int{}
	var lastRetried error
	fail := func(attempts int, err error) error {
		return fmt.Errorf("failed after %d attempts over %v (retried %v; the last retried error: %v): %w", attempts,
			time.Since(start).Round(time.Millisecond), retried, lastRetried, err)
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		switch {
		case err == nil:
			return nil
		case !Retryable(err, repeat) && attempt == 1:
			return err
		case !Retryable(err, repeat):
			return fail(attempt, err)
		}
		retried[Reason(err)]++
		lastRetried = err
		t.Logf("attempt %d: %v; retrying", attempt, err)
		select {
		case <-ctx.Done():
			return fail(attempt, fmt.Errorf("%w (while waiting to retry: %v)", err, ctx.Err()))
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// Execute runs stmts through node n, retrying as Retry does for repeat, and
// fails the test on any error, the request's or a statement's.
func Execute(t testing.TB, n *Node, repeat Repeat, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	var resp *sqlraftv1.ExecuteResponse
	err := Retry(t, context.Background(), repeat, func(ctx context.Context) (err error) {
		resp, err = n.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts})
		return err
	})
	if err != nil {
		t.Fatalf("execute via %s: %v", n.ID, err)
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != "" {
			t.Fatalf("execute via %s: statement %d: %s", n.ID, i, r.GetError())
		}
	}
	return resp
}
