package embed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
)

// Node is a running sqlraft node: its replication core, its client gRPC
// server and its membership owner.
type Node struct {
	cfg    Config
	logger *slog.Logger
	raft   *raftnode.Node
	server *server.Server
	grpc   *grpc.Server
	lis    net.Listener
	health *grpc.Server // nil without Config.HealthAddr
	hlis   net.Listener

	stopMembership context.CancelFunc
	membershipDone chan struct{}
	stopOnce       sync.Once
	stopErr        error
}

// Start builds the node cfg describes and starts it: on return the client
// API is served and the membership owner is getting the node into its
// cluster in the background. On error everything Start opened is closed
// again, cfg's listeners included.
func Start(cfg Config) (*Node, error) {
	n, err := start(cfg)
	if err != nil {
		for _, l := range []net.Listener{cfg.GRPCListener, cfg.Node.RaftListener, cfg.HealthListener} {
			if l != nil {
				l.Close()
			}
		}
	}
	return n, err
}

func start(cfg Config) (_ *Node, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := cfg.resolveID(); err != nil {
		return nil, err
	}
	if cfg.UsersFile != "" && cfg.Server.Users == nil {
		if cfg.Server.Users, err = auth.Open(cfg.UsersFile, auth.Options{Logger: cfg.Logger.With("component", "auth")}); err != nil {
			return nil, err
		}
		if !cfg.TLS.NodeTLS() {
			cfg.Logger.Warn("users without node TLS: nodes have no credentials of their own, so joining, address " +
				"publication and discovery need the '*' user to grant join and status (to anyone); " +
				"add --node-cert, --node-key and --node-ca (SECURITY.md)")
		}
	}
	lis := cfg.GRPCListener
	if lis == nil {
		if lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return nil, fmt.Errorf("listen for clients on %s: %w", cfg.GRPCAddr, err)
		}
		defer func() {
			if err != nil {
				lis.Close()
			}
		}()
	}
	hlis, err := healthListener(cfg)
	if err != nil {
		return nil, err
	}
	if hlis != nil {
		defer func() {
			if err != nil {
				hlis.Close()
			}
		}()
	}
	if cfg.Node.GRPCAdvertise == "" {
		cfg.Node.GRPCAdvertise = lis.Addr().String()
	}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o755); err != nil {
		return nil, err
	}
	rn, err := raftnode.New(cfg.Node)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: cfg.Logger, raft: rn, lis: lis, hlis: hlis, membershipDone: make(chan struct{})}
	n.server = server.New(rn, cfg.Server)
	var extra []grpc.ServerOption
	if cfg.TLS.ClientTLS() {
		extra = append(extra, grpc.Creds(cfg.TLS.ClientCredentials()))
	}
	n.grpc = n.server.GRPCServer(extra...)
	go n.grpc.Serve(lis)
	if hlis != nil {
		n.health = n.server.HealthGRPCServer()
		go n.health.Serve(hlis)
	}
	n.logger.Info("sqlraftd started", "node", rn.ID(), "grpc", lis.Addr().String(), "raft", raftAddr(cfg.Node),
		"data", cfg.Node.DataDir, "grpc_advertise", cfg.Node.GRPCAdvertise, "client_tls", cfg.TLS.ClientTLS(),
		"node_tls", cfg.TLS.NodeTLS(), "health", n.HealthAddr())
	ctx, cancel := context.WithCancel(context.Background())
	n.stopMembership = cancel
	m := newMembership(rn, cfg, n.logger.With("component", "membership"))
	go func() {
		defer close(n.membershipDone)
		m.run(ctx)
	}()
	return n, nil
}

// Raft is the node's replication core.
func (n *Node) Raft() *raftnode.Node { return n.raft }

// Server is the node's client API.
func (n *Node) Server() *server.Server { return n.server }

// GRPCAddr is the address the client API listens on.
func (n *Node) GRPCAddr() string { return n.lis.Addr().String() }

// HealthAddr is the address of the plaintext health port, or "" when it is
// off.
func (n *Node) HealthAddr() string {
	if n.hlis == nil {
		return ""
	}
	return n.hlis.Addr().String()
}

// healthListener is the plaintext health port's listener, or nil.
func healthListener(cfg Config) (net.Listener, error) {
	if cfg.HealthListener != nil || cfg.HealthAddr == "" {
		return cfg.HealthListener, nil
	}
	l, err := net.Listen("tcp", cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for health probes on %s: %w", cfg.HealthAddr, err)
	}
	return l, nil
}

// Stop shuts the node down gracefully: health turns NOT_SERVING, the
// membership owner stops, a leader hands leadership to another voter,
// in-flight calls finish (bounded by Config.ShutdownTimeout), and Raft,
// its log and SQLite close. The node stays in the cluster configuration.
// Later calls (of Stop or Close) return the first one's result.
func (n *Node) Stop() error { return n.shutdown(true) }

// Close shuts the node down at once: as Stop, but without handing
// leadership on and without waiting for in-flight calls.
func (n *Node) Close() error { return n.shutdown(false) }

func (n *Node) shutdown(graceful bool) error {
	n.stopOnce.Do(func() {
		n.logger.Info("shutting down", "graceful", graceful)
		n.server.Shutdown() // health: NOT_SERVING
		n.stopMembership()
		<-n.membershipDone
		if graceful {
			n.handOver()
			n.drain()
		} else {
			n.grpc.Stop()
		}
		if n.health != nil {
			n.health.Stop()
		}
		n.server.Close()
		n.stopErr = n.raft.Close()
		n.logger.Info("stopped", "err", n.stopErr)
	})
	return n.stopErr
}

// handOver transfers leadership to another voter when this node leads, so
// the cluster does not wait for an election timeout.
func (n *Node) handOver() {
	if !n.raft.IsLeader() || !n.hasOtherVoter() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.raft.TransferLeadership(ctx, ""); err != nil {
		n.logger.Warn("leadership transfer before shutdown failed", "err", err)
	}
}

func (n *Node) hasOtherVoter() bool {
	members, err := n.raft.Members()
	if err != nil {
		return false
	}
	for _, m := range members {
		if m.Voter && m.ID != n.raft.ID() {
			return true
		}
	}
	return false
}

func raftAddr(c raftnode.Config) string {
	if c.RaftAddr == "" && c.RaftListener != nil {
		return c.RaftListener.Addr().String()
	}
	return c.RaftAddr
}

// drain stops taking calls and waits for in-flight ones, at most
// ShutdownTimeout.
func (n *Node) drain() {
	done := make(chan struct{})
	go func() { n.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(n.cfg.ShutdownTimeout):
		n.logger.Warn("in-flight requests did not finish in time; stopping")
		n.grpc.Stop()
	}
}
