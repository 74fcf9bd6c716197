package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

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
