// Command sqlraftd runs one sqlraft node: SQLite replicated by Raft, served
// over gRPC.
//
// With no flags it starts a single-node cluster (bootstrapped on first
// start) with data in ./sqlraft-data, the client API on localhost:6001 and
// Raft on localhost:6002. Restarting on the same data directory resumes the
// same node with its data: the node ID is recorded there on first start, and
// a later start with another --node-id is refused.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/internal/version"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
)

// config is everything the flags set.
type config struct {
	grpcAddr, raftAddr           string
	grpcAdvertise, raftAdvertise string
	nodeID, dataDir              string
	nodeIDGiven                  bool // --node-id was on the command line (not its default)
	join                         []string
	bootstrapExpect              int
	discoverDNS                  string
	snapshotThreshold            uint64
	snapshotInterval             time.Duration
	trailingLogs                 uint64
	leaseIdleTimeout             time.Duration
	readConsistency              string
	maxMessageBytes              int
	maxWriteSteps, maxWriteRows  uint64
	maxWriteBytes                uint64
	maxQueryTime                 time.Duration
	streamSendTimeout            time.Duration
	applyStallTimeout            time.Duration
	raftHeartbeatTimeout         time.Duration
	raftElectionTimeout          time.Duration
	raftLeaderLeaseTimeout       time.Duration
	readLease                    time.Duration
	shutdownTimeout              time.Duration
	logLevel                     string
	nonVoter                     bool
	pprofAddr                    string // "": no profiles served
	usersFile                    string // "": no authentication
	reflection                   string
	gc                           gcConfig
	tls                          tlsFlags
	healthAddr                   string // "": no plaintext health port
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
			cfg.nodeIDGiven = cmd.Flags().Changed("node-id")
			cfg.defaultReadLease(cmd.Flags().Changed("read-lease"))
			if err := cfg.gc.apply(cmd.Flags()); err != nil {
				return err
			}
			return run(cmd.Context(), cfg)
		},
	}
	hostname, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&cfg.grpcAddr, "grpc-addr", "localhost:6001", "address the client gRPC API listens on")
	f.StringVar(&cfg.raftAddr, "raft-addr", "localhost:6002", "address Raft traffic listens on")
	f.StringVar(&cfg.grpcAdvertise, "grpc-advertise", "",
		"client API address other nodes and clients use (default: --grpc-addr, or the hostname when that listens on every interface)")
	f.StringVar(&cfg.raftAdvertise, "raft-advertise", "",
		"Raft address other nodes use (default: --raft-addr, or the hostname when that listens on every interface)")
	f.StringVar(&cfg.nodeID, "node-id", hostname,
		"this node's ID, recorded in --data-dir on first start; later starts use the recorded ID and refuse another")
	f.StringVar(&cfg.dataDir, "data-dir", "./sqlraft-data", "directory for the database, Raft log and snapshots")
	f.StringSliceVar(&cfg.join, "join", nil, "client (gRPC) addresses of existing members to join, comma-separated")
	f.IntVar(&cfg.bootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many nodes (from --join or --discover-dns) answer")
	f.StringVar(&cfg.discoverDNS, "discover-dns", "", "DNS name whose A/AAAA records list the peers (a headless service)")
	f.Uint64Var(&cfg.snapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	f.DurationVar(&cfg.snapshotInterval, "snapshot-interval", 30*time.Second, "how often to check whether to snapshot")
	f.Uint64Var(&cfg.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot")
	f.DurationVar(&cfg.leaseIdleTimeout, "lease-idle-timeout", 30*time.Second, "revoke a snapshot lease whose stream read nothing for this long")
	f.StringVar(&cfg.readConsistency, "read-consistency", "linearizable", "default read consistency: none, weak, linearizable or strong")
	f.IntVar(&cfg.maxMessageBytes, "max-message-size", msglimit.Default,
		"largest request or response, in bytes; every gRPC limit of the node (client API, forwarding, Raft) derives from it")
	f.Uint64Var(&cfg.maxWriteSteps, "max-write-steps", raftnode.DefaultEntryLimits.Steps,
		"SQLite steps one write (or STRONG read) may take; a runaway statement fails the same way on every node (0: no limit)")
	f.Uint64Var(&cfg.maxWriteRows, "max-write-rows", raftnode.DefaultEntryLimits.Rows,
		"rows one write may insert or update (0: no limit)")
	f.Uint64Var(&cfg.maxWriteBytes, "max-write-bytes", raftnode.DefaultEntryLimits.Bytes,
		"bytes of row values one write may insert or update (0: no limit)")
	f.DurationVar(&cfg.maxQueryTime, "max-query-time", 30*time.Second,
		"longest a NONE, WEAK or LINEARIZABLE read may run here before SQLite is interrupted (the caller's deadline applies if sooner)")
	f.DurationVar(&cfg.streamSendTimeout, "stream-send-timeout", server.DefaultStreamSendTimeout,
		"end a QueryStream or Backup whose client has taken no message for this long (it holds a read transaction meanwhile)")
	f.DurationVar(&cfg.applyStallTimeout, "apply-stall-timeout", 10*time.Second,
		"health is NOT_SERVING while the node has not applied what was committed this long ago")
	f.DurationVar(&cfg.raftHeartbeatTimeout, "raft-heartbeat-timeout", raftnode.DefaultHeartbeatTimeout,
		"a follower that has not heard from the leader for this long (up to twice as long, randomized) starts an election")
	f.DurationVar(&cfg.raftElectionTimeout, "raft-election-timeout", raftnode.DefaultElectionTimeout,
		"how long a candidate waits for votes before it tries again (at least --raft-heartbeat-timeout)")
	f.DurationVar(&cfg.raftLeaderLeaseTimeout, "raft-leader-lease-timeout", raftnode.DefaultLeaderLeaseTimeout,
		"a leader that has not heard from a quorum for this long steps down (at most --raft-heartbeat-timeout)")
	f.DurationVar(&cfg.readLease, "read-lease", raftnode.DefaultReadLease,
		"longest read lease of the leader: linearizable reads under it need no quorum round each (0: off; at most a quarter of --raft-heartbeat-timeout, which also caps the default)")
	f.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on shutdown")
	f.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cfg.nonVoter, "non-voter", false, "join as a non-voter (read replica); never bootstraps a cluster")
	f.StringVar(&cfg.pprofAddr, "pprof-addr", "",
		"serve Go's runtime profiles (net/http/pprof, at /debug/pprof/) on this address, never on the gRPC port (default: off)")
	f.StringVar(&cfg.usersFile, "users-file", "",
		"YAML file of users and API tokens with hashed secrets and permissions, re-read when it changes (default: no authentication)")
	f.StringVar(&cfg.reflection, "reflection", "on", "server reflection: on, authenticated (callers with credentials) or off")
	addTLSFlags(f, &cfg.tls)
	f.StringVar(&cfg.healthAddr, "health-addr", "",
		"serve grpc.health.v1 alone, in plaintext, on this address (for probes that cannot speak TLS; default: off)")
	addGCFlags(f, &cfg.gc)
	f.SortFlags = false
	cmd.AddCommand(hashPasswordCommand(), newTokenCommand())
	return cmd
}

// defaultReadLease caps the default read lease at what the heartbeat
// timeout allows, unless --read-lease was given (chosen).
func (c *config) defaultReadLease(chosen bool) {
	if !chosen {
		c.readLease = min(raftnode.DefaultReadLease, c.raftHeartbeatTimeout/4)
	}
}

func (c config) validate() error {
	if c.bootstrapExpect > 0 && len(c.join) == 0 && c.discoverDNS == "" {
		return fmt.Errorf("--bootstrap-expect needs --join or --discover-dns to find its peers")
	}
	if _, err := c.tls.options(); err != nil {
		return err
	}
	return c.validateRaftTimeouts()
}

// validateRaftTimeouts checks the Raft timeout flags, naming them in its
// errors (raftnode checks the same, in its own terms).
func (c config) validateRaftTimeouts() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--raft-heartbeat-timeout", c.raftHeartbeatTimeout}, {"--raft-election-timeout", c.raftElectionTimeout},
		{"--raft-leader-lease-timeout", c.raftLeaderLeaseTimeout}} {
		if f.d < raftnode.MinRaftTimeout {
			return fmt.Errorf("%s (%v) must be at least %v", f.name, f.d, raftnode.MinRaftTimeout)
		}
	}
	if c.raftLeaderLeaseTimeout > c.raftHeartbeatTimeout {
		return fmt.Errorf("--raft-leader-lease-timeout (%v) must not exceed --raft-heartbeat-timeout (%v)",
			c.raftLeaderLeaseTimeout, c.raftHeartbeatTimeout)
	}
	if c.readLease < 0 || c.readLease > c.raftHeartbeatTimeout/4 {
		return fmt.Errorf("--read-lease (%v) must be between 0 and a quarter of --raft-heartbeat-timeout (%v)",
			c.readLease, c.raftHeartbeatTimeout/4)
	}
	if c.raftElectionTimeout < c.raftHeartbeatTimeout {
		return fmt.Errorf("--raft-election-timeout (%v) must not be shorter than --raft-heartbeat-timeout (%v)",
			c.raftElectionTimeout, c.raftHeartbeatTimeout)
	}
	return nil
}
