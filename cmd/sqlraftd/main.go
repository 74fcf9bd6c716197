// Command sqlraftd runs one sqlraft node: SQLite replicated by Raft, served
// over gRPC.
//
// With no flags it starts a single-node cluster (bootstrapped on first
// start) with data in ./sqlraft-data, the client API on localhost:6001 and
// Raft on localhost:6002. Restarting on the same data directory resumes the
// same node with its data.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqlraft/sqlraft/internal/version"
)

// config is everything the flags set.
type config struct {
	grpcAddr, raftAddr           string
	grpcAdvertise, raftAdvertise string
	nodeID, dataDir              string
	join                         []string
	bootstrapExpect              int
	discoverDNS                  string
	snapshotThreshold            uint64
	snapshotInterval             time.Duration
	trailingLogs                 uint64
	leaseIdleTimeout             time.Duration
	readConsistency              string
	maxMessageBytes              int
	shutdownTimeout              time.Duration
	logLevel                     string
	nonVoter                     bool
}

func main() {
	if err := rootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:           "sqlraftd",
		Short:         "Run a sqlraft node: SQLite replicated by Raft, served over gRPC",
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cfg)
		},
	}
	hostname, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&cfg.grpcAddr, "grpc-addr", "localhost:6001", "address the client gRPC API listens on")
	f.StringVar(&cfg.raftAddr, "raft-addr", "localhost:6002", "address Raft traffic listens on")
	f.StringVar(&cfg.grpcAdvertise, "grpc-advertise", "", "client API address other nodes and clients use (default: --grpc-addr)")
	f.StringVar(&cfg.raftAdvertise, "raft-advertise", "", "Raft address other nodes use (default: --raft-addr)")
	f.StringVar(&cfg.nodeID, "node-id", hostname, "this node's ID; must stay the same across restarts")
	f.StringVar(&cfg.dataDir, "data-dir", "./sqlraft-data", "directory for the database, Raft log and snapshots")
	f.StringSliceVar(&cfg.join, "join", nil, "client (gRPC) addresses of existing members to join, comma-separated")
	f.IntVar(&cfg.bootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many nodes (from --join or --discover-dns) answer")
	f.StringVar(&cfg.discoverDNS, "discover-dns", "", "DNS name whose A/AAAA records list the peers (a headless service)")
	f.Uint64Var(&cfg.snapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	f.DurationVar(&cfg.snapshotInterval, "snapshot-interval", 30*time.Second, "how often to check whether to snapshot")
	f.Uint64Var(&cfg.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot")
	f.DurationVar(&cfg.leaseIdleTimeout, "lease-idle-timeout", 30*time.Second, "revoke a snapshot lease whose stream read nothing for this long")
	f.StringVar(&cfg.readConsistency, "read-consistency", "linearizable", "default read consistency: none, weak, linearizable or strong")
	f.IntVar(&cfg.maxMessageBytes, "max-message-size", 16<<20, "largest request accepted, in bytes")
	f.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on shutdown")
	f.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cfg.nonVoter, "non-voter", false, "join as a non-voter (read replica); never bootstraps a cluster")
	f.SortFlags = false
	return cmd
}

func (c config) validate() error {
	if c.nodeID == "" {
		return fmt.Errorf("--node-id is required (the hostname could not be read)")
	}
	if c.bootstrapExpect > 0 && len(c.join) == 0 && c.discoverDNS == "" {
		return fmt.Errorf("--bootstrap-expect needs --join or --discover-dns to find its peers")
	}
	return nil
}
