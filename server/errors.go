package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/raftnode"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo sqlraft returns.
const ErrorDomain = "sqlraft.v1"

// ErrorInfo reasons a client can act on.
const (
	// ReasonNotLeader: retry against the leader named in the metadata
	// (leader_id, leader_address), or allow forwarding.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonNoLeader: no leader is known; retry after a short wait.
	ReasonNoLeader = "NO_LEADER"
	// ReasonOutcomeUnknown: leadership changed while a write was in flight;
	// check before retrying a non-idempotent write.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonStale: the node is further behind than the freshness bound.
	ReasonStale = "STALE_READ"
	// ReasonIndexNotApplied: the node had not applied a read's
	// min_raft_index by the deadline (metadata min_raft_index,
	// applied_index); retry, at another node, or with a longer deadline.
	ReasonIndexNotApplied = "INDEX_NOT_APPLIED"
)

// toStatus maps an error from the layers below to a gRPC status.
func (s *Server) toStatus(err error) error {
	if err == nil {
		return nil
	}
	// A status from above the node (a send to the client) may come back
	// wrapped (errors.Join in a read transaction): answer with the status
	// itself, whose message status.FromError would prefix with the wrapping.
	var grpcErr interface{ GRPCStatus() *status.Status }
	if errors.As(err, &grpcErr) && grpcErr.GRPCStatus() != nil {
		return grpcErr.GRPCStatus().Err()
	}
	var inv *raftnode.InvalidError
	var tooLarge *msglimit.TooLargeError
	var queryTime *raftnode.QueryTimeError
	var notApplied *raftnode.IndexNotAppliedError
	switch {
	case errors.As(err, &notApplied):
		return withInfo(codes.FailedPrecondition, err.Error(), ReasonIndexNotApplied, map[string]string{
			"min_raft_index": strconv.FormatUint(notApplied.MinIndex, 10),
			"applied_index":  strconv.FormatUint(notApplied.Applied, 10)})
	case errors.As(err, &queryTime):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.As(err, &inv):
		st := status.New(codes.InvalidArgument, err.Error())
		st, _ = st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: fmt.Sprintf("statements[%d]", inv.Index), Description: inv.Reason}}})
		return st.Err()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, raftnode.ErrNotLeader):
		id, addr := s.node.Leader()
		return withInfo(codes.FailedPrecondition, fmt.Sprintf("node %s is not the leader; the leader is %s at %s", s.node.ID(), id, addr),
			ReasonNotLeader, map[string]string{"leader_id": id, "leader_address": addr})
	case errors.Is(err, raftnode.ErrNoLeader):
		return withInfo(codes.Unavailable, "no leader is known; the cluster may be electing one, retry shortly", ReasonNoLeader, nil)
	case errors.Is(err, raftnode.ErrOutcomeUnknown):
		return withInfo(codes.Unavailable, err.Error(), ReasonOutcomeUnknown, nil)
	case errors.Is(err, raftnode.ErrStale):
		return withInfo(codes.FailedPrecondition, err.Error(), ReasonStale, nil)
	case errors.Is(err, raftnode.ErrUnknownNode):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, raftnode.ErrInvalid):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, raftnode.ErrResultTooLarge), errors.Is(err, raftnode.ErrTooManyStreams), errors.As(err, &tooLarge):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, raftnode.ErrStreamStopped):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, raftnode.ErrClosed), errors.Is(err, raftnode.ErrShutdown):
		return status.Error(codes.Unavailable, "node is shutting down")
	}
	return status.Error(codes.Internal, err.Error())
}

func withInfo(code codes.Code, msg, reason string, md map[string]string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
