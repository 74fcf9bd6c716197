package server

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Observability calls admitted per second per node, and the burst a quiet
// node lets through at once. Each RPC costs CPU on both ends however cheap
// its answer is; monitors polling back to back would otherwise take cores
// the workload needs. Past the rate callers wait their turn, which bounds a
// tight polling loop to this rate without failing it.
const (
	PollCallsPerSecond = 100
	PollBurst          = 20
)

// pollGate admits ClusterService.Status and Checksum calls at a bounded rate
// (one gate each). Its zero value is ready to use.
type pollGate struct {
	once    sync.Once
	limiter *rate.Limiter
}

// wait blocks until the call may proceed. It fails at once with
// ResourceExhausted when ctx would end before the call's turn.
func (g *pollGate) wait(ctx context.Context) error {
	g.once.Do(func() { g.limiter = rate.NewLimiter(PollCallsPerSecond, PollBurst) })
	if err := g.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.ResourceExhausted, "too many status or checksum calls on this node; poll less often")
	}
	return nil
}
