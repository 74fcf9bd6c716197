package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/discovery"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
	"github.com/sqlraft/sqlraft/raftnode"
)

// membership is the one owner of "get this node into its cluster and keep
// its entry current": bootstrap, discovery, join and the publication of the
// node's client address all happen here, in one goroutine per node (see the
// package documentation for the rules). It waits on raftnode.Node.Changed
// instead of polling; only failed attempts are retried on a timer.
type membership struct {
	node   *raftnode.Node
	cfg    Config
	self   raftnode.Member // this node's ID and advertised addresses
	logger *slog.Logger
	dial   []grpc.DialOption
	conns  map[string]*grpc.ClientConn // by client address, for publishing
}

func newMembership(node *raftnode.Node, cfg Config, logger *slog.Logger) *membership {
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		node.MessageLimit().ForwardDialOptions()...)
	dial = append(dial, cfg.Server.ForwardDialOptions...)
	self := node.Local()
	self.Voter = !cfg.NonVoter
	return &membership{node: node, cfg: cfg, self: self, logger: logger, dial: dial,
		conns: map[string]*grpc.ClientConn{}}
}

// run enters the cluster, then keeps this node's address published until
// ctx ends.
func (m *membership) run(ctx context.Context) {
	defer func() {
		for _, c := range m.conns {
			c.Close()
		}
	}()
	if err := m.enter(ctx); err != nil && ctx.Err() == nil {
		m.logger.Error("could not join or form the cluster", "err", err)
	}
	m.keepPublished(ctx)
}

// enter bootstraps, discovers or joins, as the configuration says.
func (m *membership) enter(ctx context.Context) error {
	switch {
	case len(m.cfg.InitialVoters) > 0:
		return m.bootstrap(m.cfg.InitialVoters)
	case m.cfg.BootstrapExpect > 0 || m.cfg.DiscoverDNS != "":
		return m.discover(ctx)
	case len(m.cfg.Join) > 0:
		return m.join(ctx, m.cfg.Join)
	case m.self.Voter:
		return m.bootstrap([]raftnode.Member{m.self})
	}
	return nil // a non-voter with nowhere to join waits to be added
}

// bootstrap forms a new cluster of voters unless this node has Raft state.
func (m *membership) bootstrap(voters []raftnode.Member) error {
	if m.node.HasState() {
		return nil
	}
	m.logger.Info("bootstrapping a new cluster", "voters", len(voters))
	return m.node.BootstrapVoters(voters)
}

// prober is discovery's: with node TLS it dials the candidates' IPs
// checking only that they hold a node certificate, then checks that the
// certificate covers the addresses each answer claims (tlsconfig
// ProbeDialOptions): everything done with an answer dials those.
func (m *membership) prober() discovery.GRPCProber {
	if !m.cfg.TLS.NodeTLS() {
		return discovery.GRPCProber{DialOptions: m.dial}
	}
	return discovery.GRPCProber{
		DialOptions: append(slices.Clone(m.dial), m.cfg.TLS.ProbeDialOptions()...),
		CheckAnswer: func(p *peer.Peer, answer discovery.Peer) error {
			return tlsconfig.CheckClaims(p, answer.RaftAddr, answer.GRPCAddr)
		},
	}
}

// discover runs internal/discovery and carries out its plan. A non-voter
// never bootstraps: it waits for a formed cluster and joins it.
func (m *membership) discover(ctx context.Context) error {
	src, err := m.source()
	if err != nil {
		return err
	}
	expect := m.cfg.BootstrapExpect
	if !m.self.Voter {
		expect = 0
	}
	plan, err := discovery.Run(ctx, discovery.Config{
		Self:     discovery.Peer{ID: m.self.ID, RaftAddr: m.self.RaftAddress, GRPCAddr: m.self.GRPCAddress},
		Expect:   expect,
		HasState: m.node.HasState(),
		Source:   src,
		Prober:   m.prober(),
		Interval: m.cfg.RetryInterval,
		Logf:     func(format string, args ...any) { m.logger.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return err
	}
	m.logger.Info("discovery decided", "action", plan.Action.String(), "voters", len(plan.Voters), "join", plan.JoinAddrs)
	switch plan.Action {
	case discovery.ActionBootstrap:
		voters := make([]raftnode.Member, len(plan.Voters))
		for i, p := range plan.Voters {
			voters[i] = raftnode.Member{ID: p.ID, RaftAddress: p.RaftAddr, Voter: true}
		}
		// The other voters' client addresses reach the node table when they
		// join, and this node's when keepPublished (or, as leader, raftnode)
		// records it.
		return m.bootstrap(voters)
	case discovery.ActionJoin:
		return m.join(ctx, plan.JoinAddrs)
	}
	return nil
}

// source is the candidate list: DNS when DiscoverDNS is set (port from the
// advertised client address unless the name has one), otherwise Join.
func (m *membership) source() (discovery.Source, error) {
	if m.cfg.DiscoverDNS == "" {
		return discovery.StaticSource(m.cfg.Join), nil
	}
	_, port, err := net.SplitHostPort(m.self.GRPCAddress)
	if err != nil {
		return nil, fmt.Errorf("advertised client address: %w", err)
	}
	return discovery.NewDNSSource(m.cfg.DiscoverDNS, port, nil)
}

// join asks each address in turn, round after round, to add this node
// (a follower forwards Join to the leader), until one accepts or ctx ends.
// Asking again is a no-op for a member with unchanged addresses.
func (m *membership) join(ctx context.Context, addrs []string) error {
	var last error
	for round := 1; ; round++ {
		for _, addr := range addrs {
			if addr == m.self.GRPCAddress || addr == m.cfg.GRPCAddr {
				continue
			}
			if last = m.askJoin(ctx, addr); last == nil {
				m.logger.Info("joined the cluster", "via", addr)
				return nil
			}
			m.logger.Debug("join attempt failed", "via", addr, "err", last)
		}
		if last == nil {
			return fmt.Errorf("no address to join but this node's own")
		}
		if round%10 == 0 {
			m.logger.Warn("still trying to join", "members", strings.Join(addrs, ","), "err", last)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(m.cfg.RetryInterval):
		}
	}
}

// keepPublished makes sure the replicated node table holds this node's
// client address, so others can forward to it and list it. A node added by
// Join is recorded then, and a leader records itself (raftnode); a node
// bootstrapped as a member, or restarted with a new address, asks the
// leader here. Joining with an unchanged role is a no-op for the Raft
// configuration, so this only ever updates the address.
func (m *membership) keepPublished(ctx context.Context) {
	for {
		changed := m.node.Changed()
		var retry <-chan time.Time
		if err := m.publish(ctx); err != nil {
			m.logger.Debug("publishing this node's client address", "err", err)
			retry = time.After(m.cfg.RetryInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}

// publish asks the leader to record this node's address when the table
// lacks it; it does nothing while that is not needed or not yet possible
// (no leader known: the next change wakes keepPublished).
func (m *membership) publish(ctx context.Context) error {
	self, ok := m.node.Self()
	if !ok || self.GRPCAddress == "" || m.node.IsLeader() || m.node.NodeAddress(self.ID) == self.GRPCAddress {
		return nil
	}
	_, addr := m.node.Leader()
	if addr == "" {
		return nil
	}
	return m.askJoinWith(ctx, addr, self) // self.Voter: the role the configuration has
}

func (m *membership) askJoin(ctx context.Context, addr string) error {
	return m.askJoinWith(ctx, addr, m.self)
}

// askJoinWith sends Join for member to the node at addr.
func (m *membership) askJoinWith(ctx context.Context, addr string, member raftnode.Member) error {
	conn, ok := m.conns[addr]
	if !ok {
		var err error
		if conn, err = grpc.NewClient(addr, m.dial...); err != nil {
			return err
		}
		m.conns[addr] = conn
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := sqlraftv1.NewClusterServiceClient(conn).Join(cctx, &sqlraftv1.JoinRequest{
		Id: member.ID, RaftAddress: member.RaftAddress, GrpcAddress: member.GRPCAddress, NonVoter: !member.Voter})
	if err != nil {
		return fmt.Errorf("join via %s: %w", addr, err)
	}
	return nil
}
