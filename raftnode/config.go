package raftnode

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/snapshot"
)

// Config configures a Node.
type Config struct {
	// ID is the node's Raft server ID; it must be stable across restarts.
	ID string
	// DataDir holds the SQLite database (db.sqlite), the Raft log (raft/),
	// snapshots (snapshots/) and the node's ID (IDFileName). New records ID
	// there on first start and refuses a directory recording another ID.
	DataDir string
	// RaftAddr is the address the Raft gRPC server listens on.
	RaftAddr string
	// RaftListener, when set, is used instead of listening on RaftAddr.
	RaftListener net.Listener
	// RaftAdvertise is the Raft address other nodes dial (default RaftAddr).
	RaftAdvertise string
	// GRPCAdvertise is the client API address other nodes forward to.
	GRPCAdvertise string

	// SnapshotThreshold is the number of log entries between snapshots.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// TrailingLogs is the number of entries kept after a snapshot.
	TrailingLogs uint64

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft's
	// failure detection (see DefaultHeartbeatTimeout and DESIGN.md,
	// "Timeouts on a busy machine"). Zero takes the default, except that a
	// zero ElectionTimeout is at least HeartbeatTimeout and a zero
	// LeaderLeaseTimeout at most HeartbeatTimeout. New refuses values under
	// MinRaftTimeout, a lease longer than the heartbeat timeout and an
	// election timeout shorter than it.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// ReadLease is the longest read lease the leader holds (DESIGN.md,
	// "Read leases"): while a quorum's answers show that no other leader
	// can exist, a linearizable read needs no confirmation round of its
	// own. Zero turns leases off; at most a quarter of HeartbeatTimeout.
	// A node with leases on waits this long after it starts (or after a
	// node on the same directory closed in this process) before it starts
	// Raft. DefaultReadLease is the daemon's default.
	ReadLease time.Duration

	// MaxMessageBytes is the node's message size limit (--max-message-size;
	// zero is msglimit.Default). Every gRPC limit of the node, the largest
	// log entry and the Raft batch size derive from it.
	MaxMessageBytes int
	// EntryLimits bound the work of every entry this node proposes; they
	// travel with the entry, so all replicas apply it under the proposer's
	// limits. Nil takes DefaultEntryLimits (its ResultBytes from the
	// message limit).
	EntryLimits *Limits
	// ApplyStallTimeout is how long the FSM may stay behind the commit
	// index before Ready (and so the node's health) reports false
	// (default 10 s).
	ApplyStallTimeout time.Duration
	// MaxQueryTime bounds how long a read outside the log (NONE, WEAK,
	// LINEARIZABLE) may run on this node, or the caller's deadline when that
	// is sooner; SQLite is interrupted when it passes (default 30 s). For a
	// stream it bounds the time between two messages. Reads through the log
	// (STRONG, and reads in a write request) are bounded by the entry's
	// step budget instead, which is the same on every replica.
	MaxQueryTime time.Duration

	// RaftDialOptions are added to the dial options of the Raft transport
	// and of snapshot pulls (keepalive, insecure credentials, the reconnect
	// policy and the wait for a peer that is down are set by default; see
	// reconnect.go).
	RaftDialOptions []grpc.DialOption
	// RaftServerOptions are added to the Raft gRPC server's options
	// (credentials, interceptors: node mTLS).
	RaftServerOptions []grpc.ServerOption
	// ChecksumInterval is the least time between two checksum computations
	// while the applied index moves (DefaultChecksumInterval when zero);
	// Checksum calls in between get the last result and the index it
	// reflects.
	ChecksumInterval time.Duration
	// SnapshotLeaseIdleTimeout revokes a snapshot reader's lease (a Raft
	// install stream, a backup) after this long without a byte read; zero
	// takes Snapshot.LeaseIdleTimeout, or the store's default (30 s).
	SnapshotLeaseIdleTimeout time.Duration
	// Snapshot configures the snapshot store in detail (file system, test
	// hooks); its Logger defaults to the node's. Daemons leave it zero.
	Snapshot snapshot.Options

	Logger *slog.Logger

	limit msglimit.Limit // derived from MaxMessageBytes
}

// Raft timeout defaults (sqlraftd's --raft-heartbeat-timeout,
// --raft-election-timeout and --raft-leader-lease-timeout). hashicorp/raft's
// own (1 s, 1 s, 500 ms) lose the leader again and again on a busy 2-core
// machine; these do not, at the price of a slower failover (a dead leader is
// noticed after 2-4 s). DESIGN.md, "Timeouts on a busy machine", has the
// measurement.
const (
	DefaultHeartbeatTimeout   = 2 * time.Second
	DefaultElectionTimeout    = 2 * time.Second
	DefaultLeaderLeaseTimeout = 2 * time.Second
	// DefaultReadLease is sqlraftd's --read-lease: a quarter of the
	// default heartbeat timeout.
	DefaultReadLease = 500 * time.Millisecond
)

// MinRaftTimeout is the least heartbeat, election or lease timeout
// hashicorp/raft accepts.
const MinRaftTimeout = 5 * time.Millisecond

// Limits bound the work of one entry: SQLite steps, rows and bytes written,
// and result bytes (zero fields take the defaults).
type Limits = sqlitedb.Limits

// DefaultEntryLimits are the limits an entry is proposed with when
// Config.EntryLimits is nil: about a second of SQLite work on a small
// machine, and more rows and bytes than any one legitimate request is
// expected to write. ResultBytes is filled from the message limit.
var DefaultEntryLimits = sqlitedb.Limits{Steps: 100_000_000, Rows: 5_000_000, Bytes: 256 << 20}

// legacyEntryLimits apply to entries proposed before entries carried limits:
// the same on every replica, whatever each node is configured with. Such an
// entry may already have been applied, without limits, by replicas running
// the older version, so the limits must not stop anything that finished
// there: no row or byte limit, and a step limit two orders of magnitude
// above the default (about a minute and a half of SQLite work), which only a
// runaway entry that wedged the older version reaches. It then fails and
// rolls back the same way on every replica.
var legacyEntryLimits = sqlitedb.Limits{Steps: 10_000_000_000, ResultBytes: 64 << 20}

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
	if err := c.raftTimeouts(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ApplyStallTimeout == 0 {
		c.ApplyStallTimeout = 10 * time.Second
	}
	if c.MaxQueryTime <= 0 {
		c.MaxQueryTime = 30 * time.Second
	}
	var err error
	if c.limit, err = msglimit.New(c.MaxMessageBytes); err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	if c.EntryLimits == nil {
		l := DefaultEntryLimits
		c.EntryLimits = &l
	}
	if c.EntryLimits.ResultBytes == 0 {
		c.EntryLimits.ResultBytes = uint64(c.limit.ResultBytes())
	}
	return nil
}

// leaseIdleTimeout is the snapshot store's lease idle timeout.
func (c *Config) leaseIdleTimeout() time.Duration {
	switch {
	case c.SnapshotLeaseIdleTimeout > 0:
		return c.SnapshotLeaseIdleTimeout
	case c.Snapshot.LeaseIdleTimeout > 0:
		return c.Snapshot.LeaseIdleTimeout
	}
	return snapshot.DefaultLeaseIdleTimeout
}

// raftTimeouts fills in and checks the Raft timeouts.
func (c *Config) raftTimeouts() error {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = max(DefaultElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if err := ValidateRaftTimeouts(c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout); err != nil {
		return err
	}
	if c.ReadLease < 0 || c.ReadLease > c.HeartbeatTimeout/4 {
		return fmt.Errorf("raftnode: the read lease (%v) must be between 0 and a quarter of the heartbeat timeout (%v)",
			c.ReadLease, c.HeartbeatTimeout/4)
	}
	return nil
}

// ValidateRaftTimeouts checks Raft timeouts as hashicorp/raft would, with
// errors that say what to change: each at least MinRaftTimeout, the leader
// lease no longer than the heartbeat timeout (a leader must not hold on to
// its lease after its followers may have elected another), and the election
// timeout no shorter than it.
func ValidateRaftTimeouts(heartbeat, election, lease time.Duration) error {
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"heartbeat", heartbeat}, {"election", election}, {"leader lease", lease}} {
		if v.d < MinRaftTimeout {
			return fmt.Errorf("raftnode: the Raft %s timeout (%v) must be at least %v", v.name, v.d, MinRaftTimeout)
		}
	}
	if lease > heartbeat {
		return fmt.Errorf("raftnode: the Raft leader lease timeout (%v) must not exceed the heartbeat timeout (%v)", lease, heartbeat)
	}
	if election < heartbeat {
		return fmt.Errorf("raftnode: the Raft election timeout (%v) must not be shorter than the heartbeat timeout (%v)", election, heartbeat)
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
	rc.MaxAppendEntries = c.limit.MaxAppendEntries()
	// The database persists its applied position (see FSM); replaying the
	// snapshot on every start would throw that away.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = newHCLogger(c.Logger.With("component", "raft"))
	return rc
}

// The log cache (raftlog.Cache) in front of the log store keeps at most
// this many of the newest entries, and this many bytes of them: enough for
// replication and the followers' apply to read what was just appended from
// memory while the writes stream in, small beside the RSS budget of a node.
const (
	logCacheEntries = 1024
	logCacheBytes   = 2 << 20
)
