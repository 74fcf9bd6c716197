package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
)

func run(ctx context.Context, cfg config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	logger, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	consistency, err := parseConsistency(cfg.readConsistency)
	if err != nil {
		return err
	}
	if cfg.nodeID, err = resolveNodeID(cfg, logger); err != nil {
		return err
	}
	if cfg.grpcAdvertise, err = advertiseAddr(thisMachine, "grpc-addr", cfg.grpcAddr, cfg.grpcAdvertise); err != nil {
		return err
	}
	if cfg.raftAdvertise, err = advertiseAddr(thisMachine, "raft-addr", cfg.raftAddr, cfg.raftAdvertise); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("listen on --grpc-addr: %w", err)
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return err
	}
	node, err := raftnode.New(raftnode.Config{
		ID: cfg.nodeID, DataDir: cfg.dataDir, RaftAddr: cfg.raftAddr, RaftAdvertise: cfg.raftAdvertise,
		GRPCAdvertise: cfg.grpcAdvertise, Bootstrap: len(cfg.join) == 0 && cfg.bootstrapExpect == 0 && cfg.discoverDNS == "" && !cfg.nonVoter,
		SnapshotThreshold: cfg.snapshotThreshold, SnapshotInterval: cfg.snapshotInterval, TrailingLogs: cfg.trailingLogs,
		MaxMessageBytes: cfg.maxMessageBytes, ApplyStallTimeout: cfg.applyStallTimeout, MaxQueryTime: cfg.maxQueryTime,
		HeartbeatTimeout: cfg.raftHeartbeatTimeout, ElectionTimeout: cfg.raftElectionTimeout,
		LeaderLeaseTimeout:       cfg.raftLeaderLeaseTimeout,
		EntryLimits:              &raftnode.Limits{Steps: cfg.maxWriteSteps, Rows: cfg.maxWriteRows, Bytes: cfg.maxWriteBytes},
		SnapshotLeaseIdleTimeout: cfg.leaseIdleTimeout,
		Logger:                   logger,
	})
	if err != nil {
		lis.Close()
		return err
	}
	srv := server.New(node, server.Options{DefaultConsistency: consistency, Logger: logger})
	gs := srv.GRPCServer()
	go gs.Serve(lis)
	logger.Info("sqlraftd started", "node", cfg.nodeID, "grpc", cfg.grpcAddr, "raft", cfg.raftAddr, "data", cfg.dataDir,
		"grpc_advertise", cfg.grpcAdvertise, "raft_advertise", cfg.raftAdvertise)
	if err := formCluster(ctx, cfg, node, logger); err != nil && ctx.Err() == nil {
		logger.Error("could not join or form the cluster", "err", err)
	}
	<-ctx.Done()
	return shutdown(cfg, node, srv, gs, logger)
}

// shutdown stops taking requests, lets in-flight ones finish (bounded),
// hands leadership on, and closes Raft and SQLite. It never removes the node
// from the cluster configuration.
func shutdown(cfg config, node *raftnode.Node, srv *server.Server, gs *grpc.Server, logger *slog.Logger) error {
	logger.Info("shutting down")
	srv.Shutdown() // health: NOT_SERVING
	if node.IsLeader() {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := node.TransferLeadership(tctx, ""); err != nil {
			logger.Warn("leadership transfer before shutdown failed", "err", err)
		}
		cancel()
	}
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.shutdownTimeout):
		logger.Warn("in-flight requests did not finish in time; stopping")
		gs.Stop()
	}
	err := node.Close()
	logger.Info("stopped", "err", err)
	return err
}

// joinCluster asks each member in turn to add this node (the request is
// forwarded to the leader), until one accepts or ctx ends.
func joinCluster(ctx context.Context, cfg config, node *raftnode.Node, addrs []string, logger *slog.Logger) error {
	req := &sqlraftv1.JoinRequest{Id: cfg.nodeID, RaftAddress: cfg.raftAdvertise, GrpcAddress: cfg.grpcAdvertise, NonVoter: cfg.nonVoter}
	for attempt := 0; ; attempt++ {
		for _, addr := range addrs {
			if addr == cfg.grpcAdvertise || addr == cfg.grpcAddr {
				continue
			}
			if err := callJoin(ctx, addr, req); err != nil {
				logger.Debug("join attempt failed", "via", addr, "err", err)
				continue
			}
			logger.Info("joined the cluster", "via", addr)
			return nil
		}
		if attempt%10 == 9 {
			logger.Warn("still trying to join", "members", strings.Join(addrs, ","))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func parseConsistency(s string) (sqlraftv1.ReadConsistency, error) {
	v, ok := sqlraftv1.ReadConsistency_value["READ_CONSISTENCY_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("--read-consistency: %q is not one of none, weak, linearizable, strong", s)
	}
	return sqlraftv1.ReadConsistency(v), nil
}
