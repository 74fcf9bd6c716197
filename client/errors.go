package client

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo sqlraft returns.
const ErrorDomain = "sqlraft.v1"

// ErrorInfo reasons sqlraft servers return, with what the client does.
const (
	// ReasonNotLeader (FAILED_PRECONDITION, with metadata leader_id and
	// leader_address): the node would not forward; the client sends the
	// call again to the leader named.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonNoLeader (UNAVAILABLE): no leader is known, nothing was
	// proposed; the client retries after a pause.
	ReasonNoLeader = "NO_LEADER"
	// ReasonOutcomeUnknown (UNAVAILABLE): leadership moved while a write
	// was in flight; it may or may not have been applied. The client
	// returns it unless the write is marked Idempotent.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonStale (FAILED_PRECONDITION): a NONE read's freshness bound was
	// not met.
	ReasonStale = "STALE_READ"
	// ReasonIndexNotApplied (FAILED_PRECONDITION, with metadata
	// min_raft_index and applied_index): the node had not applied a read's
	// min_raft_index by the deadline; the client returns it (retry at
	// another node, or with a longer deadline).
	ReasonIndexNotApplied = "INDEX_NOT_APPLIED"
)

// MetadataNoForward is the request metadata key that asks followers not to
// forward (see WithNoForward).
const MetadataNoForward = "sqlraft-no-forward"

// ErrorInfo returns the sqlraft google.rpc.ErrorInfo of a gRPC error, or
// nil when it carries none. Its Metadata holds leader_id and
// leader_address for ReasonNotLeader.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info
		}
	}
	return nil
}

// Reason returns the ErrorInfo reason of err (ReasonNotLeader, ...), or "".
func Reason(err error) string { return ErrorInfo(err).GetReason() }

// StatementError is a SQL error reported for one statement of a request
// (the result's error field), as opposed to a gRPC error of the whole call.
type StatementError struct {
	Index   int    // position of the statement in the request
	SQL     string // the statement's SQL
	Message string // SQLite's message
}

// Error implements error.
func (e *StatementError) Error() string {
	return fmt.Sprintf("statement %d (%s): %s", e.Index, abbreviate(e.SQL), e.Message)
}

func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 60 {
		return sql[:57] + "..."
	}
	return sql
}

// verdict is what the retry loop does after a failed attempt.
type verdict int

const (
	giveUp   verdict = iota // return the error
	redirect                // send again, at once, to the leader the error names
	retry                   // pause, then send again (to the next node)
)

// opKind says whether repeating an operation is safe.
type opKind int

const (
	// repeatable operations (reads, status) may run any number of times.
	repeatable opKind = iota
	// write operations run at most once unless the caller opts in.
	write
)

// classify decides what to do after err. retryUnknown is the caller's
// consent to repeat a write whose outcome is unknown.
func classify(err error, kind opKind, retryUnknown bool) verdict {
	st, _ := status.FromError(err)
	reason := Reason(err)
	if reason == ReasonNotLeader {
		return redirect
	}
	if st.Code() != codes.Unavailable {
		return giveUp
	}
	switch {
	case reason == ReasonNoLeader:
		return retry
	case kind == repeatable || retryUnknown:
		return retry
	case reason == ReasonOutcomeUnknown:
		return giveUp
	case notSent(st):
		return retry
	}
	return giveUp // UNAVAILABLE after the write may have reached a node
}

// notSent reports whether an UNAVAILABLE status says the request never
// reached a node: grpc-go failed to connect (a follower forwarding to a
// leader it cannot reach reports the same). Any other UNAVAILABLE (a
// connection that broke mid-call, a node shutting down) may come after the
// request was received, so a write's outcome is unknown.
func notSent(st *status.Status) bool {
	msg := st.Message()
	return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "connect: connection refused") ||
		strings.Contains(msg, "has not published its client address")
}

// AttemptsError is returned when the client retried a call and then gave
// up: it wraps the last attempt's error, so status.Code, Reason and
// errors.Is see it.
type AttemptsError struct {
	Attempts int
	Err      error
}

// Error implements error.
func (e *AttemptsError) Error() string {
	return fmt.Sprintf("%v (after %d attempts)", e.Err, e.Attempts)
}

// Unwrap returns the last attempt's error.
func (e *AttemptsError) Unwrap() error { return e.Err }

// GRPCStatus returns the last attempt's status with the attempt count in
// its message, so status.FromError keeps code and details.
func (e *AttemptsError) GRPCStatus() *status.Status {
	st, _ := status.FromError(e.Err)
	p := st.Proto()
	p.Message = e.Error()
	return status.FromProto(p)
}

// errClosed is returned by calls on a closed Client.
var errClosed = errors.New("client: closed")
