package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// leaderHealthService is the health service a node reports SERVING only
// while it leads (server.LeaderHealthService).
const leaderHealthService = "sqlraft.v1.Leader"

// waitPollInterval is the pause between two health checks of wait.
const waitPollInterval = 250 * time.Millisecond

func waitCommand(g *globals) *cobra.Command {
	var leader bool
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the node is SERVING (knows a leader and has caught up), at most --timeout",
		Long: "Poll the node's grpc.health.v1 service until it reports SERVING: the node knows a leader and has " +
			"applied what was committed. Exits 0 then, or non-zero when --timeout passes first. The node need " +
			"not be listening yet.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			service := ""
			if leader {
				service = leaderHealthService
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			if err := waitServing(ctx, g, service); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is SERVING\n", g.addr)
			return nil
		},
	}
	cmd.Flags().BoolVar(&leader, "leader", false, "wait until the node is the leader")
	return cmd
}

// waitServing checks service's health on g.addr until it is SERVING or ctx
// ends; the error then says what the node last answered.
func waitServing(ctx context.Context, g *globals, service string) error {
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	last := "no answer yet"
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		switch {
		case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		case err == nil:
			last = resp.GetStatus().String()
		case ctx.Err() == nil: // not the deadline cutting this check short
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s is not SERVING after %s (last: %s)", g.addr, g.timeout, last)
			}
			return ctx.Err()
		case <-time.After(waitPollInterval):
		}
	}
}
