package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/pprofserve"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/embed"
)

// run turns the flags into an embed.Config, starts the node and stops it
// gracefully on SIGINT or SIGTERM (or when ctx ends). Everything between
// is embed's: sqlraftd wires nothing itself, except the profiles of
// --pprof-addr, which are about this process, not the node.
func run(ctx context.Context, cfg config) error {
	ecfg, err := cfg.embedConfig()
	if err != nil {
		return err
	}
	if cfg.pprofAddr != "" {
		profiles, err := pprofserve.Start(cfg.pprofAddr, ecfg.Logger)
		if err != nil {
			return err
		}
		defer profiles.Close()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	node, err := embed.Start(ecfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return node.Stop()
}

// embedConfig checks the flags and builds the node's configuration from
// them.
func (c config) embedConfig() (embed.Config, error) {
	if err := c.validate(); err != nil {
		return embed.Config{}, err
	}
	logger, err := newLogger(c.logLevel)
	if err != nil {
		return embed.Config{}, err
	}
	consistency, err := parseConsistency(c.readConsistency)
	if err != nil {
		return embed.Config{}, err
	}
	grpcAdvertise, err := advertiseAddr(thisMachine, "grpc-addr", c.grpcAddr, c.grpcAdvertise)
	if err != nil {
		return embed.Config{}, err
	}
	raftAdvertise, err := advertiseAddr(thisMachine, "raft-addr", c.raftAddr, c.raftAdvertise)
	if err != nil {
		return embed.Config{}, err
	}
	reflection, err := server.ParseReflectionMode(cmp.Or(c.reflection, "on"))
	if err != nil {
		return embed.Config{}, fmt.Errorf("--reflection: %w", err)
	}
	ecfg := embed.Config{
		Node: raftnode.Config{
			DataDir: c.dataDir, RaftAddr: c.raftAddr, RaftAdvertise: raftAdvertise, GRPCAdvertise: grpcAdvertise,
			SnapshotThreshold: c.snapshotThreshold, SnapshotInterval: c.snapshotInterval, TrailingLogs: c.trailingLogs,
			MaxMessageBytes: c.maxMessageBytes, ApplyStallTimeout: c.applyStallTimeout, MaxQueryTime: c.maxQueryTime,
			HeartbeatTimeout: c.raftHeartbeatTimeout, ElectionTimeout: c.raftElectionTimeout,
			LeaderLeaseTimeout: c.raftLeaderLeaseTimeout, ReadLease: c.readLease,
			EntryLimits:              &raftnode.Limits{Steps: c.maxWriteSteps, Rows: c.maxWriteRows, Bytes: c.maxWriteBytes},
			SnapshotLeaseIdleTimeout: c.leaseIdleTimeout,
		},
		DefaultID: c.nodeID,
		GRPCAddr:  c.grpcAddr,
		Server: server.Options{DefaultConsistency: consistency, StreamSendTimeout: c.streamSendTimeout,
			Reflection: reflection},
		UsersFile:       c.usersFile,
		Join:            c.join,
		BootstrapExpect: c.bootstrapExpect,
		DiscoverDNS:     c.discoverDNS,
		NonVoter:        c.nonVoter,
		ShutdownTimeout: c.shutdownTimeout,
		Logger:          logger,
	}
	if c.nodeIDGiven {
		ecfg.Node.ID = c.nodeID // insisted on: a data directory recording another is refused
	}
	ecfg.HealthAddr = c.healthAddr
	if ecfg.TLS, err = c.tls.config(logger); err != nil {
		return embed.Config{}, err
	}
	return ecfg, withDialSource(&ecfg)
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
