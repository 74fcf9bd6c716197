package raftnode

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/sqlraft/sqlraft/snapshot"
)

// Config configures a Node.
type Config struct {
	// ID is the node's Raft server ID; it must be stable across restarts.
	ID string
	// DataDir holds the SQLite database, the Raft log and snapshots.
	DataDir string
	// RaftAddr is the address the Raft gRPC server listens on.
	RaftAddr string
	// RaftListener, when set, is used instead of listening on RaftAddr.
	RaftListener net.Listener
	// RaftAdvertise is the Raft address other nodes dial (default RaftAddr).
	RaftAdvertise string
	// GRPCAdvertise is the client API address other nodes forward to.
	GRPCAdvertise string
	// Bootstrap makes a node with no Raft state form a new cluster with
	// BootstrapServers (or itself alone when empty). Ignored when state exists.
	Bootstrap        bool
	BootstrapServers []raft.Server

	// SnapshotThreshold is the number of log entries between snapshots.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// TrailingLogs is the number of entries kept after a snapshot.
	TrailingLogs uint64

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft's
	// failure detection; zero takes the defaults below.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration

	// RaftDialOptions are added to the transport's dial options (keepalive
	// and insecure credentials are set by default).
	RaftDialOptions []grpc.DialOption
	// Snapshot configures the snapshot store (file system, lease idle
	// timeout, test hooks); its Logger defaults to the node's.
	Snapshot snapshot.Options

	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.RaftListener != nil && c.RaftAddr == "" {
		c.RaftAddr = c.RaftListener.Addr().String()
	}
	if c.ID == "" || c.DataDir == "" || c.RaftAddr == "" {
		return fmt.Errorf("raftnode: ID, DataDir and RaftAddr are required")
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftAddr
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = 20 * time.Millisecond
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	// The database persists its applied position (see FSM); replaying the
	// snapshot on every start would throw that away.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = newHCLogger(c.Logger.With("component", "raft"))
	return rc
}
