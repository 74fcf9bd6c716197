package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sqlraft/sqlraft/internal/discovery"
	"github.com/sqlraft/sqlraft/raftnode"
)

// discoverCluster handles --bootstrap-expect and --discover-dns: it finds the
// peers (the --join list or the DNS name's A/AAAA records), then bootstraps
// the cluster if this node is the one the rule in internal/discovery picks,
// or joins it otherwise. A node with Raft state on disk never bootstraps.
// nonVoter nodes never bootstrap; they wait for a formed cluster and join it
// as non-voters. It blocks until done or ctx ends, so run it in a goroutine:
// Raft and the gRPC server (Status) must be up while it runs.
func discoverCluster(ctx context.Context, cfg config, node *raftnode.Node, nonVoter bool, logger *slog.Logger) error {
	src, err := discoverySource(cfg)
	if err != nil {
		return err
	}
	self := discovery.Peer{ID: cfg.nodeID, RaftAddr: cfg.raftAdvertise, GRPCAddr: cfg.grpcAdvertise}
	expect := cfg.bootstrapExpect
	if nonVoter {
		expect = 0
	}
	log := logger.With("component", "discovery")
	plan, err := discovery.Run(ctx, discovery.Config{
		Self:     self,
		Expect:   expect,
		HasState: node.HasState(),
		Source:   src,
		Prober:   discovery.GRPCProber{},
		Logf:     func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return err
	}
	log.Info("discovery decided", "action", plan.Action.String(), "voters", len(plan.Voters), "join", plan.JoinAddrs)
	switch plan.Action {
	case discovery.ActionBootstrap:
		voters := make([]raftnode.Member, len(plan.Voters))
		for i, p := range plan.Voters {
			voters[i] = raftnode.Member{ID: p.ID, RaftAddress: p.RaftAddr}
		}
		if err := node.BootstrapVoters(voters); err != nil {
			return err
		}
		// The other voters' client addresses reach the FSM when they join.
		return discovery.GRPCProber{}.Join(ctx, []string{cfg.grpcAdvertise}, self, false, time.Second)
	case discovery.ActionJoin:
		return discovery.GRPCProber{}.Join(ctx, plan.JoinAddrs, self, nonVoter, time.Second)
	default:
		return nil
	}
}

// discoverySource builds the candidate list: DNS when --discover-dns is
// set (port from the advertised gRPC address unless the name has one),
// otherwise the --join list.
func discoverySource(cfg config) (discovery.Source, error) {
	if cfg.discoverDNS == "" {
		return discovery.StaticSource(cfg.join), nil
	}
	_, port, err := net.SplitHostPort(cfg.grpcAdvertise)
	if err != nil {
		return nil, fmt.Errorf("--grpc-advertise: %w", err)
	}
	return discovery.NewDNSSource(cfg.discoverDNS, port, nil)
}
