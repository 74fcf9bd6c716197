package main

import (
	"fmt"
	"log/slog"

	"github.com/sqlraft/sqlraft/raftnode"
)

// resolveNodeID decides this node's ID before anything listens or opens:
//
//   - the data directory records an ID (every start after the first): that
//     ID, and an explicit --node-id naming another is an error naming both;
//   - it records none (the first start, or a directory from a version that
//     did not record IDs): --node-id, or its default, the hostname.
//
// raftnode.New records the ID it is given in the directory.
func resolveNodeID(cfg config, logger *slog.Logger) (string, error) {
	stored, err := raftnode.ReadStoredID(cfg.dataDir)
	if err != nil {
		return "", fmt.Errorf("read the node ID from --data-dir: %w", err)
	}
	if stored.ID != "" {
		if cfg.nodeIDGiven && cfg.nodeID != stored.ID {
			return "", fmt.Errorf("--node-id is %q, but data directory %s belongs to node %q: "+
				"start with --node-id %q (or without --node-id) to resume that node, or give a new node its own --data-dir",
				cfg.nodeID, cfg.dataDir, stored.ID, stored.ID)
		}
		return stored.ID, nil
	}
	if cfg.nodeID == "" {
		return "", fmt.Errorf("--node-id is required (the hostname could not be read)")
	}
	if stored.HasState {
		logger.Warn("recording the node ID in a data directory written by an earlier version; "+
			"it must be the ID this node has had all along", "node", cfg.nodeID, "data", cfg.dataDir)
	}
	return cfg.nodeID, nil
}
