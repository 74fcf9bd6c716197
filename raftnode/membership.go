package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
)

// ErrUnknownNode: the node is not in the configuration.
var ErrUnknownNode = errors.New("no such node in the cluster configuration")

// ErrInvalid: the request makes no sense in the cluster's current state.
var ErrInvalid = errors.New("invalid request")

// Member is one server of the Raft configuration with its client address.
type Member struct {
	ID          string
	RaftAddress string
	GRPCAddress string
	Voter       bool
	Leader      bool
}

// Join adds a node to the configuration, or updates its address. Joining
// again with the same ID, address and role changes nothing. Leader only.
func (n *Node) Join(ctx context.Context, id, raftAddr, grpcAddr string, voter bool) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	cfg, err := n.configuration()
	if err != nil {
		return err
	}
	same := false
	for _, s := range cfg.Servers {
		if string(s.ID) == id && string(s.Address) == raftAddr && (s.Suffrage == raft.Voter) == voter {
			same = true
		}
	}
	timeout := deadlineOr(ctx, 10*time.Second)
	if !same {
		var f raft.IndexFuture
		if voter {
			f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeout)
		} else {
			f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeout)
		}
		if err := f.Error(); err != nil {
			return n.applyError(err)
		}
		n.logger.Info("node joined", "id", id, "raft", raftAddr, "voter", voter)
	}
	if grpcAddr != "" && n.fsm.NodeAddress(id) != grpcAddr {
		_, err := n.propose(ctx, &raftlogv1.Command{Kind: &raftlogv1.Command_SetNode{
			SetNode: &raftlogv1.NodeAddress{Id: id, GrpcAddress: grpcAddr}}})
		return err
	}
	return nil
}

// Remove takes a node out of the configuration. Leader only.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	cfg, err := n.configuration()
	if err != nil {
		return err
	}
	found := false
	for _, s := range cfg.Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, deadlineOr(ctx, 10*time.Second)).Error(); err != nil {
		return n.applyError(err)
	}
	n.logger.Info("node removed", "id", id)
	if id == n.cfg.ID {
		return nil // we are no longer leader of anything
	}
	_, err = n.propose(ctx, &raftlogv1.Command{Kind: &raftlogv1.Command_RemoveNode{RemoveNode: id}})
	return err
}

// Members lists the configuration with client addresses.
func (n *Node) Members() ([]Member, error) {
	cfg, err := n.configuration()
	if err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	out := make([]Member, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		out = append(out, Member{
			ID: string(s.ID), RaftAddress: string(s.Address), GRPCAddress: n.fsm.NodeAddress(string(s.ID)),
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader,
		})
	}
	return out, nil
}

// Self describes this node as the configuration has it, with the client
// address it advertises; ok is false while it is not a member.
func (n *Node) Self() (m Member, ok bool) {
	cfg, err := n.configuration()
	if err != nil {
		return Member{}, false
	}
	for _, s := range cfg.Servers {
		if string(s.ID) == n.cfg.ID {
			return Member{ID: n.cfg.ID, RaftAddress: string(s.Address), GRPCAddress: n.cfg.GRPCAdvertise,
				Voter: s.Suffrage == raft.Voter}, true
		}
	}
	return Member{}, false
}

func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, err
	}
	return f.Configuration(), nil
}

// TransferLeadership hands leadership to the voter id, or to any voter when
// id is empty, and waits for the transfer. Leader only.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	if n.lease != nil {
		// Followers vote for the transfer's target despite their leader:
		// no lease may be counted on until the transfer has ended.
		n.lease.suspend()
		defer n.lease.resume()
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		members, err := n.Members()
		if err != nil {
			return err
		}
		var target *Member
		for i := range members {
			if members[i].ID == id {
				target = &members[i]
			}
		}
		if target == nil || !target.Voter {
			return fmt.Errorf("%w: %q is not a voter", ErrUnknownNode, id)
		}
		if id == n.cfg.ID {
			return fmt.Errorf("%w: %q already leads", ErrInvalid, id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(target.RaftAddress))
	}
	return n.applyError(f.Error())
}

// HasState reports whether the node's log holds any entry: it has been part
// of a cluster (a node with state never bootstraps).
func (n *Node) HasState() bool { return n.raft.LastIndex() > 0 }

// BootstrapVoters forms a new cluster whose voters are voters (by ID and
// Raft address). A node that already has state keeps it: that is not an
// error, as when several nodes race to bootstrap the same cluster.
func (n *Node) BootstrapVoters(voters []Member) error {
	servers := make([]raft.Server, len(voters))
	for i, m := range voters {
		servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddress)}
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// Local describes this node as it advertises itself: its ID, Raft address
// and client address (Voter and Leader are not set: see Self).
func (n *Node) Local() Member {
	return Member{ID: n.cfg.ID, RaftAddress: n.cfg.RaftAdvertise, GRPCAddress: n.cfg.GRPCAdvertise}
}
