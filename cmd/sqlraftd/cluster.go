package main

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
)

// formCluster gets this node into a cluster: a plain start bootstraps alone
// (done by raftnode on first start), --join asks existing members to add it.
// Nodes with existing Raft state rejoin automatically; asking again is a
// no-op for the leader, and updates the node's addresses if they changed.
func formCluster(ctx context.Context, cfg config, node *raftnode.Node, logger *slog.Logger) error {
	if cfg.bootstrapExpect > 0 || cfg.discoverDNS != "" {
		go func() {
			if err := discoverCluster(ctx, cfg, node, cfg.nonVoter, logger); err != nil && ctx.Err() == nil {
				logger.Error("discovery failed", "err", err)
			}
		}()
		return nil
	}
	if len(cfg.join) == 0 {
		return nil
	}
	go func() {
		if err := joinCluster(ctx, cfg, node, cfg.join, logger); err != nil && ctx.Err() == nil {
			logger.Error("join failed", "err", err)
		}
	}()
	return nil
}

func callJoin(ctx context.Context, addr string, req *sqlraftv1.JoinRequest) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = sqlraftv1.NewClusterServiceClient(conn).Join(cctx, req)
	return err
}
