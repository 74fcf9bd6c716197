// Package discovery decides how a starting sqlraft node enters its cluster
// when it was started with --bootstrap-expect N.
//
// Candidate peers come from a Source: a static --join list or DNS A/AAAA
// lookups of a headless-service name. Every candidate is asked who it is (a
// Prober, in production ClusterService.Status over gRPC). Once at least N
// distinct nodes answer, and the same set answered in consecutive rounds, the
// rule is deterministic and needs no coordination:
//
//   - a node with existing Raft state never bootstraps (ActionResume);
//   - if any peer already belongs to a formed cluster, join it (ActionJoin);
//   - otherwise the node with the lowest ID among the answering nodes
//     bootstraps with all of them as voters (ActionBootstrap), and every
//     other node joins through it (ActionJoin; the join is a no-op for a node
//     already in the bootstrap configuration).
//
// Every node must run Raft (able to vote) and serve Status while discovery
// runs: the bootstrapper needs the others' votes to elect itself.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Action is what a starting node should do with its Raft instance.
type Action int

const (
	// ActionResume means the node has Raft state already: start as is,
	// neither bootstrap nor join.
	ActionResume Action = iota
	// ActionBootstrap means this node bootstraps the cluster with Plan.Voters.
	ActionBootstrap
	// ActionJoin means this node asks the peers in Plan.JoinAddrs to add it.
	ActionJoin
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case ActionResume:
		return "resume"
	case ActionBootstrap:
		return "bootstrap"
	case ActionJoin:
		return "join"
	default:
		return fmt.Sprintf("Action(%d)", int(a))
	}
}

// Peer is a node as it describes itself.
type Peer struct {
	// ID is the node's Raft server ID.
	ID string
	// RaftAddr is the address other nodes use for Raft traffic.
	RaftAddr string
	// GRPCAddr is the client (gRPC) address of the node.
	GRPCAddr string
	// Member is true when the node already belongs to a formed cluster: it
	// knows a leader or holds Raft log entries.
	Member bool
}

// Plan is the outcome of discovery.
type Plan struct {
	// Action says what to do.
	Action Action
	// Voters is the initial configuration for ActionBootstrap, sorted by ID
	// and including this node.
	Voters []Peer
	// JoinAddrs are the gRPC addresses to send Join to, in order of
	// preference, for ActionJoin. This node's own address is never listed.
	JoinAddrs []string
}

// Source yields the gRPC addresses (host:port) of candidate peers.
type Source interface {
	// Addresses returns the current candidates; it may include this node.
	Addresses(ctx context.Context) ([]string, error)
}

// Prober asks a candidate address which node answers there.
type Prober interface {
	// Probe returns the node's self-description, or an error if it does not
	// answer.
	Probe(ctx context.Context, addr string) (Peer, error)
}

// Config parameterizes Run.
type Config struct {
	// Self describes this node (ID, advertised Raft and gRPC addresses).
	Self Peer
	// Expect is the number of nodes that must answer before a cluster is
	// bootstrapped (--bootstrap-expect). Zero means never bootstrap: wait for
	// a formed cluster and join it (for non-voters and late nodes).
	Expect int
	// HasState reports that this node already has Raft state on disk.
	HasState bool
	// Source lists candidate peers.
	Source Source
	// Prober identifies candidates.
	Prober Prober
	// Interval is the pause between rounds (default 1s).
	Interval time.Duration
	// ProbeTimeout bounds one probe (default 2s).
	ProbeTimeout time.Duration
	// StableRounds is how many consecutive rounds must see the same set of
	// nodes before this node bootstraps (default 2).
	StableRounds int
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.StableRounds <= 0 {
		c.StableRounds = 2
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("discovery: invalid configuration")

// Run discovers peers until it can decide, and returns the plan. It returns
// ctx.Err() if ctx ends first.
func Run(ctx context.Context, cfg Config) (Plan, error) {
	cfg.defaults()
	if cfg.HasState {
		return Plan{Action: ActionResume}, nil
	}
	if cfg.Expect < 0 || cfg.Self.ID == "" || cfg.Source == nil || cfg.Prober == nil {
		return Plan{}, fmt.Errorf("%w: need Expect >= 0, Self.ID, Source and Prober", ErrConfig)
	}
	var lastKey string
	stable := 0
	for round := 1; ; round++ {
		peers, err := gather(ctx, cfg)
		if err != nil {
			cfg.Logf("discovery round %d: %v", round, err)
		}
		plan, ok := Decide(cfg.Self, cfg.Expect, peers)
		key := idKey(cfg.Self, peers)
		if key == lastKey {
			stable++
		} else {
			lastKey, stable = key, 1
		}
		switch {
		case ok && plan.Action == ActionJoin:
			return plan, nil
		case ok && stable >= cfg.StableRounds:
			return plan, nil
		case ok:
			cfg.Logf("discovery round %d: %s answered; waiting for a stable set", round, key)
		default:
			cfg.Logf("discovery round %d: %s answered, expecting %d", round, key, cfg.Expect)
		}
		select {
		case <-ctx.Done():
			return Plan{}, ctx.Err()
		case <-time.After(cfg.Interval):
		}
	}
}

// gather lists candidates and probes each one concurrently.
func gather(ctx context.Context, cfg Config) ([]Peer, error) {
	addrs, err := cfg.Source.Addresses(ctx)
	if err != nil {
		return nil, err
	}
	type result struct {
		peer Peer
		err  error
	}
	results := make(chan result, len(addrs))
	for _, addr := range addrs {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, cfg.ProbeTimeout)
			defer cancel()
			p, err := cfg.Prober.Probe(pctx, addr)
			if err == nil && p.GRPCAddr == "" {
				p.GRPCAddr = addr
			}
			results <- result{p, err}
		}()
	}
	var peers []Peer
	var errs []error
	for range addrs {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		peers = append(peers, r.peer)
	}
	return peers, errors.Join(errs...)
}

// Decide applies the bootstrap rule to the nodes that answered. It reports
// false when it cannot decide yet (fewer than expect distinct nodes and no
// formed cluster). peers may include self; self always counts. With expect
// below 1 it only ever decides to join a formed cluster.
func Decide(self Peer, expect int, peers []Peer) (Plan, bool) {
	nodes := distinct(self, peers)
	var members []string
	for _, p := range nodes {
		if p.ID != self.ID && p.Member && p.GRPCAddr != "" {
			members = append(members, p.GRPCAddr)
		}
	}
	if len(members) > 0 {
		return Plan{Action: ActionJoin, JoinAddrs: appendOthers(members, self, nodes)}, true
	}
	if expect < 1 || len(nodes) < expect {
		return Plan{}, false
	}
	if nodes[0].ID == self.ID {
		voters := make([]Peer, len(nodes))
		copy(voters, nodes)
		return Plan{Action: ActionBootstrap, Voters: voters}, true
	}
	first := []string{nodes[0].GRPCAddr}
	return Plan{Action: ActionJoin, JoinAddrs: appendOthers(first, self, nodes)}, true
}

// distinct returns self plus the peers, one per ID (self's own description
// wins), sorted by ID.
func distinct(self Peer, peers []Peer) []Peer {
	byID := map[string]Peer{self.ID: self}
	for _, p := range peers {
		if p.ID == "" || p.ID == self.ID {
			continue
		}
		if _, seen := byID[p.ID]; !seen {
			byID[p.ID] = p
		}
	}
	out := make([]Peer, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// appendOthers appends the gRPC addresses of nodes other than self that are
// not already in addrs.
func appendOthers(addrs []string, self Peer, nodes []Peer) []string {
	for _, p := range nodes {
		if p.ID == self.ID || p.GRPCAddr == "" || slices.Contains(addrs, p.GRPCAddr) {
			continue
		}
		addrs = append(addrs, p.GRPCAddr)
	}
	return addrs
}

// idKey names the set of answering nodes, for stability checks and logs.
func idKey(self Peer, peers []Peer) string {
	nodes := distinct(self, peers)
	ids := make([]string, len(nodes))
	for i, p := range nodes {
		ids[i] = p.ID
	}
	return "[" + strings.Join(ids, " ") + "]"
}
