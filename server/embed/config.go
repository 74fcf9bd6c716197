package embed

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/sqlraft/sqlraft/internal/tlsconfig"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server"
)

// Config is everything a node is built from.
type Config struct {
	// Node configures the replication core. Node.ID, when set, is the ID the
	// caller insists on: Start refuses a data directory that records another.
	// When empty, the recorded ID is used, or DefaultID on a first start.
	// Node.GRPCAdvertise defaults to the client listener's address.
	Node raftnode.Config
	// DefaultID is the node's ID on a first start when Node.ID is empty (the
	// daemon passes the hostname).
	DefaultID string

	// GRPCAddr is the address the client API listens on.
	GRPCAddr string
	// GRPCListener, when set, is served instead of listening on GRPCAddr.
	GRPCListener net.Listener
	// Server configures the client API (default read consistency, logger).
	Server server.Options
	// UsersFile, when set (and Server.Users is not), is the users file
	// (internal/auth) that authenticates and authorizes client calls; Start
	// fails when it does not parse.
	UsersFile string

	// TLS, when set, secures the node (internal/tlsconfig): the client
	// listener's credentials, the Raft port's mutual TLS and name checks,
	// and every dial to another node (Raft, snapshot pulls, read leases,
	// forwarding, join, publication, discovery probes).
	TLS *tlsconfig.Config
	// HealthAddr, when set, serves grpc.health.v1 alone, in plaintext, on
	// this address, for probes that cannot speak TLS (Kubernetes'). It
	// answers from the same health state as the client API.
	HealthAddr string
	// HealthListener, when set, is served instead of listening on
	// HealthAddr.
	HealthListener net.Listener

	// InitialVoters, when set, bootstraps a new cluster of exactly these
	// voters on a node with no Raft state. Every member may be given the
	// same list.
	InitialVoters []raftnode.Member
	// Join lists client addresses of members to ask to add this node.
	Join []string
	// BootstrapExpect forms a new cluster once this many nodes (from Join or
	// DiscoverDNS) answer; see internal/discovery.
	BootstrapExpect int
	// DiscoverDNS is a name whose A/AAAA records list the peers.
	DiscoverDNS string
	// NonVoter joins as a non-voter; a non-voter never bootstraps.
	NonVoter bool
	// RetryInterval is the pause between two rounds of join attempts, and
	// before a failed address publication is tried again (default 1 s).
	RetryInterval time.Duration

	// ShutdownTimeout bounds how long Stop waits for in-flight calls
	// (default 15 s).
	ShutdownTimeout time.Duration
	// Logger receives the node's logs (default slog.Default()).
	Logger *slog.Logger
}

// Default timings.
const (
	DefaultRetryInterval   = time.Second
	DefaultShutdownTimeout = 15 * time.Second
)

func (c *Config) defaults() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Node.Logger == nil {
		c.Node.Logger = c.Logger
	}
	if c.Server.Logger == nil {
		c.Server.Logger = c.Logger
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Node.DataDir == "" {
		return fmt.Errorf("embed: Node.DataDir is required")
	}
	if c.GRPCAddr == "" && c.GRPCListener == nil {
		return fmt.Errorf("embed: GRPCAddr or GRPCListener is required")
	}
	if c.BootstrapExpect > 0 && len(c.Join) == 0 && c.DiscoverDNS == "" {
		return fmt.Errorf("embed: BootstrapExpect needs Join or DiscoverDNS to find its peers")
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("embed: BootstrapExpect must not be negative")
	}
	c.applyTLS()
	return nil
}

// applyTLS adds the TLS configuration's options to the Raft server, the
// Raft dials and the dials to other nodes' client ports (forwarding,
// membership and discovery take Server.ForwardDialOptions). A
// credentials option given later overrides the plaintext default.
func (c *Config) applyTLS() {
	if c.TLS.NodeTLS() {
		c.Node.RaftServerOptions = append(c.Node.RaftServerOptions, c.TLS.RaftServerOptions()...)
		c.Node.RaftDialOptions = append(c.Node.RaftDialOptions, c.TLS.NodeDialOptions()...)
		if c.Server.NodePeer == nil {
			c.Server.NodePeer = tlsconfig.NodePeer
		}
	}
	if c.TLS.ClientTLS() {
		c.Server.ForwardDialOptions = append(c.Server.ForwardDialOptions, c.TLS.NodeDialOptions()...)
	}
}

// resolveID decides the node's ID before anything listens or opens:
//
//   - the data directory records an ID (every start after the first): that
//     ID, and an explicit Node.ID naming another is an error naming both;
//   - it records none (the first start, or a directory from a version that
//     did not record IDs): Node.ID, or DefaultID.
//
// raftnode.New records the ID it is given in the directory.
func (c *Config) resolveID() error {
	stored, err := raftnode.ReadStoredID(c.Node.DataDir)
	if err != nil {
		return fmt.Errorf("read the node ID from the data directory: %w", err)
	}
	if stored.ID != "" {
		if c.Node.ID != "" && c.Node.ID != stored.ID {
			return fmt.Errorf("the node ID is %q, but data directory %s belongs to node %q: "+
				"start with node ID %q (sqlraftd: --node-id %q, or no --node-id) to resume that node, "+
				"or give a new node its own data directory", c.Node.ID, c.Node.DataDir, stored.ID, stored.ID, stored.ID)
		}
		c.Node.ID = stored.ID
		return nil
	}
	if c.Node.ID == "" {
		c.Node.ID = c.DefaultID
	}
	if c.Node.ID == "" {
		return fmt.Errorf("a node ID is required (sqlraftd: --node-id; the hostname could not be read)")
	}
	if stored.HasState {
		c.Logger.Warn("recording the node ID in a data directory written by an earlier version; "+
			"it must be the ID this node has had all along", "node", c.Node.ID, "data", c.Node.DataDir)
	}
	return nil
}
