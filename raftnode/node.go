package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	transport "github.com/Jille/raft-grpc-transport"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/internal/raftlog"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/snapshot"
)

// Keepalive on Raft connections. An idle connection is pinged every
// RaftKeepaliveTime (10 s is the least grpc-go allows) and closed when the
// ping is not answered within RaftKeepaliveTimeout: a silent peer is found
// within 13 s. While data is in flight (a snapshot install) grpc-go also sets
// TCP_USER_TIMEOUT to RaftKeepaliveTimeout, so the kernel breaks a stream to
// a dead peer within 3 s of its last acknowledgement.
const (
	RaftKeepaliveTime    = 10 * time.Second
	RaftKeepaliveTimeout = 3 * time.Second
)

// Node is one sqlraft server's replication core: the Raft instance, its
// gRPC transport and server, the FSM and the SQLite database.
type Node struct {
	cfg    Config
	logger *slog.Logger

	db        *sqlitedb.DB
	fsm       *FSM
	raft      *raft.Raft
	logStore  *raftlog.Store
	logs      *raftlog.Cache // logStore's newest entries, for Raft and the read path
	snapshots SnapshotStore
	transport *transport.Manager
	server    *grpc.Server
	listener  net.Listener

	reads        *readIndex
	lease        *readLease    // nil when Config.ReadLease is off
	leaseClients *leaseClients // the lease's connections to the voters
	voteGate     *voteGate     // refuses votes for a while after start (with leases)
	raftRef      atomic.Pointer[raft.Raft]
	stateIndexes stateIndexMemo // see stateIndex
	lag          *applyLag
	// indexWaiters counts reads waiting for their MinIndex (minindex.go).
	indexWaiters atomic.Int64

	checksums *ChecksumCache // see checksum.go
	storage   *storageStats  // cached sizes for Status

	// closing ends when Close starts: waits for a peer's connection and
	// snapshot pulls stop, so that Raft's shutdown never waits for them.
	closing     context.Context
	stopClosing context.CancelFunc
	installed   chan struct{} // see snapshotAfterInstall

	mu          sync.Mutex
	readyTerm   uint64 // term in which this node, as leader, applied its barrier
	closed      bool
	observer    *raft.Observer
	stopObserve chan struct{}
	wg          sync.WaitGroup
}

// New opens (or creates) the node's state under cfg.DataDir and starts its
// Raft gRPC server on cfg.RaftAddr. A node with no Raft state waits to be
// bootstrapped (BootstrapVoters) or added to a cluster (Join on the leader).
func New(cfg Config) (*Node, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), stopObserve: make(chan struct{}),
		lag: newApplyLag(cfg.ApplyStallTimeout)}
	n.closing, n.stopClosing = context.WithCancel(context.Background())
	n.installed = make(chan struct{}, 1)
	if err := n.open(); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cfg := n.cfg
	if err := ClaimDataDir(cfg.DataDir, cfg.ID); err != nil { // see identity.go
		return err
	}
	var err error
	// Automatic checkpoints are off: the WAL's frames since the last
	// snapshot are the next incremental snapshot, and the snapshot store
	// checkpoints when it has captured them.
	dbOpts := sqlitedb.Options{AutoCheckpoint: -1, MaxResultBytes: cfg.limit.ResultBytes()}
	if n.db, err = sqlitedb.Open(filepath.Join(cfg.DataDir, "db.sqlite"), dbOpts); err != nil {
		return err
	}
	if n.snapshots, err = n.openSnapshots(); err != nil {
		return err
	}
	if n.fsm, err = NewFSM(cfg.ID, n.db, n.snapshots, n.logger); err != nil {
		return err
	}
	n.fsm.afterInstall = n.noteInstall
	// The Raft log and stable store (internal/raftlog: raft-wal, correct on
	// Windows, recovering from failed appends).
	logOpts := raftlog.Options{Logger: newHCLogger(n.logger.With("component", "raftlog"))}
	if n.logStore, err = raftlog.Open(filepath.Join(cfg.DataDir, "raft"), logOpts); err != nil {
		return err
	}
	n.logs = raftlog.NewCache(n.logStore, logCacheEntries, logCacheBytes)
	if err := n.catchUpFromSnapshot(); err != nil {
		return err
	}
	n.checksums = NewChecksumCache(n.db.Checksum, n.fsm.Applied, cfg.ChecksumInterval)
	n.storage = newStorageStats(n.db.Size, n.logStore.FirstIndex, StorageStatsMaxAge)
	if err := n.startTransport(); err != nil {
		return err
	}
	trans := n.transport.Transport()
	if cfg.ReadLease > 0 { // no votes until leases granted before a restart have ended (readLease)
		full, ok := trans.(raft.LoopbackTransport)
		if !ok {
			return fmt.Errorf("start raft: the transport %T cannot carry a vote gate", trans)
		}
		n.voteGate = newVoteGate(full, grantsEnd(cfg.DataDir, cfg.ReadLease), time.Now)
		trans = n.voteGate
	}
	if n.raft, err = raft.NewRaft(cfg.raftConfig(), n.fsm, n.logs, n.logStore, n.snapshots, trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raftRef.Store(n.raft)
	n.reads = newReadIndex(n.raft)
	if cfg.ReadLease > 0 {
		n.leaseClients = &leaseClients{opts: n.raftDialOptions()}
		n.lease = &readLease{length: cfg.ReadLease, heartbeat: cfg.HeartbeatTimeout, id: cfg.ID, raft: n.raft,
			ask: n.leaseClients.ask, retain: n.leaseClients.retain, changed: n.Changed, now: time.Now}
	}
	n.observe()
	n.noteInstall() // the newest snapshot may have no files (a crash after an install)
	go n.snapshotAfterInstall()
	return nil
}

func (n *Node) openSnapshots() (SnapshotStore, error) {
	opts := n.cfg.Snapshot
	if n.cfg.SnapshotLeaseIdleTimeout > 0 {
		opts.LeaseIdleTimeout = n.cfg.SnapshotLeaseIdleTimeout
	}
	if opts.Logger == nil {
		opts.Logger = n.logger.With("component", "snapshots")
	}
	// Installs go by pull (pull.go): the store offers snapshots at this
	// node's Raft address and pulls what it is offered.
	opts.Pull = snapshot.PullOptions{Address: n.cfg.RaftAdvertise, Fetch: n.fetchSnapshot}
	store, err := snapshot.New(filepath.Join(n.cfg.DataDir, "snapshots"), opts)
	if err != nil {
		return nil, err
	}
	// An install interrupted by a crash may have left its file next to the
	// database (after the store's recovery, which may move it back).
	if err := snapshot.RemoveRestoreLeftovers(opts.FS, n.cfg.DataDir); err != nil {
		n.logger.Warn("could not remove an interrupted install's files", "dir", n.cfg.DataDir, "error", err)
	}
	return store, nil
}

// catchUpFromSnapshot restores the newest snapshot when the database is
// older than it (the file was lost, or a restore was interrupted). Raft
// itself never restores on start: the database normally holds more than the
// snapshot, and Raft replays only the entries after the snapshot.
func (n *Node) catchUpFromSnapshot() error {
	list, err := n.snapshots.List()
	if err != nil || len(list) == 0 {
		return err
	}
	latest := list[0]
	// A snapshot taken just after an election ends on the leader's barrier,
	// which the FSM never sees: compare with the last entry that changed
	// state (or, when the log cannot tell, with the snapshot's index).
	if target, _ := n.lastStateEntry(latest.Index); n.fsm.Applied() >= target {
		return nil
	}
	n.logger.Warn("database is behind the newest snapshot; restoring it", "applied", n.fsm.Applied(), "snapshot", latest.Index)
	_, rc, err := n.snapshots.Open(latest.ID)
	if errors.Is(err, snapshot.ErrInLiveDB) {
		return fmt.Errorf("the database (%s) is at index %d, behind the newest snapshot (%d), whose files were "+
			"installed into the database and no longer exist: the database file was lost or replaced; "+
			"empty the data directory and add the node to its cluster again: %w",
			n.db.Path(), n.fsm.Applied(), latest.Index, err)
	}
	if err != nil {
		return err
	}
	return n.fsm.Restore(rc)
}

func raftKeepalive() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: RaftKeepaliveTime, Timeout: RaftKeepaliveTimeout, PermitWithoutStream: true}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

func (n *Node) startTransport() error {
	n.transport = transport.New(raft.ServerAddress(n.cfg.RaftAdvertise), n.raftDialOptions())
	lis := n.cfg.RaftListener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", n.cfg.RaftAddr); err != nil {
			return fmt.Errorf("listen on raft address: %w", err)
		}
	}
	n.listener = lis
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: RaftKeepaliveTime, Timeout: RaftKeepaliveTimeout}),
	}
	opts = append(opts, raftFlowServerOptions()...) // flow.go
	opts = append(opts, n.cfg.limit.RaftServerOptions()...)
	n.server = grpc.NewServer(append(opts, n.cfg.RaftServerOptions...)...)
	n.transport.Register(n.server)
	sqlraftv1.RegisterSnapshotPullServiceServer(n.server, pullServer{store: n.snapshots, closing: n.closing})
	sqlraftv1.RegisterReadLeaseServiceServer(n.server, leaseServer{raft: &n.raftRef})
	go n.server.Serve(lis)
	return nil
}

// ID is the node's Raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// DB is the node's database, for local reads.
func (n *Node) DB() *sqlitedb.DB { return n.db }

// FSM is the node's state machine.
func (n *Node) FSM() *FSM { return n.fsm }

// MessageLimit is the node's message size limit, from which every gRPC
// server and connection of the node takes its limits.
func (n *Node) MessageLimit() msglimit.Limit { return n.cfg.limit }

// Raft exposes the underlying Raft instance for status and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Close shuts Raft down, stops the transport and closes the database. It
// never changes the cluster configuration.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	return n.closeAll()
}

func (n *Node) closeAll() error {
	n.stopClosing()
	var errs []error
	if n.fsm != nil {
		n.fsm.Stop() // an entry retried forever must not hold Raft's shutdown
	}
	if n.raft != nil {
		close(n.stopObserve)
		n.raft.DeregisterObserver(n.observer)
		n.wg.Wait()
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.reads != nil {
		n.reads.close()
	}
	if n.leaseClients != nil {
		n.leaseClients.close()
	}
	if n.voteGate != nil {
		n.voteGate.halt()
	}
	if n.server != nil {
		n.server.Stop()
		noteClosed(n.cfg.DataDir) // it answers no lease question from now on
	}
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if n.snapshots != nil {
		errs = append(errs, n.snapshots.Close())
	}
	if n.db != nil {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// Context helpers shared by the request paths.
func deadlineOr(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return d
}
