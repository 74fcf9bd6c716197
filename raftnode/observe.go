package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
)

// observe turns Raft's observations (role, leader, peer changes) into
// Node.Changed, and prepares this node for serving when it becomes leader:
// it applies a barrier (so everything its predecessors committed is in its
// database before it serves reads) and records its own client address in
// the replicated node table, then declares itself ready.
func (n *Node) observe() {
	ch := make(chan raft.Observation, 64)
	n.observer = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState, raft.PeerObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(2)
	go func() { // never blocks Raft: only signals
		defer n.wg.Done()
		for {
			select {
			case <-n.stopObserve:
				return
			case <-ch:
				n.fsm.changes.notify()
			}
		}
	}()
	go func() {
		defer n.wg.Done()
		n.prepareLeadership()
	}()
}

// prepareLeadership runs onLeaderChange whenever the node's view changes,
// and again a second after an attempt that left a leader unready (a barrier
// that timed out).
func (n *Node) prepareLeadership() {
	var retry <-chan time.Time
	for {
		changed := n.fsm.changes.wait()
		retry = nil
		if !n.onLeaderChange() {
			retry = time.After(time.Second)
		}
		select {
		case <-n.stopObserve:
			return
		case <-changed:
		case <-retry:
		}
	}
}

// onLeaderChange makes a new leader ready. It reports false when this node
// leads but could not be made ready (try again later).
func (n *Node) onLeaderChange() bool {
	if n.raft.State() != raft.Leader {
		return true
	}
	term := n.term()
	n.mu.Lock()
	done := n.readyTerm == term
	n.mu.Unlock()
	if done {
		return true
	}
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		n.logger.Warn("leader barrier failed", "err", err)
		return false
	}
	// Publish our client address before declaring readiness, so followers
	// can forward to us by the time probes see a ready leader.
	if n.cfg.GRPCAdvertise != "" && n.fsm.NodeAddress(n.cfg.ID) != n.cfg.GRPCAdvertise {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := n.propose(ctx, &raftlogv1.Command{Kind: &raftlogv1.Command_SetNode{
			SetNode: &raftlogv1.NodeAddress{Id: n.cfg.ID, GrpcAddress: n.cfg.GRPCAdvertise}}})
		if err != nil {
			n.logger.Warn("record own address", "err", err)
			return false
		}
	}
	n.mu.Lock()
	n.readyTerm = term
	n.mu.Unlock()
	n.fsm.changes.notify()
	n.logger.Info("leader ready", "term", term)
	return true
}

// Ready reports what a readiness probe asks: this node knows a leader (is
// one, with its term's barrier applied), and its FSM keeps up: within the
// last ApplyStallTimeout it had applied everything committed at that moment.
// A node whose FSM is stuck or far behind is not ready, leader or not.
func (n *Node) Ready() bool {
	if n.raft.State() == raft.Leader {
		n.mu.Lock()
		ready := n.readyTerm == n.term()
		n.mu.Unlock()
		if !ready {
			return false
		}
	} else if id, _ := n.raft.LeaderWithID(); id == "" {
		return false
	}
	return n.applyCurrent()
}

// applyCurrent reports whether the FSM keeps up with the commit index.
func (n *Node) applyCurrent() bool {
	reached := func(i uint64) bool { return n.fsm.Applied() >= n.stateIndex(i) }
	return n.lag.check(time.Now(), n.fsm.Applied(), n.raft.CommitIndex(), reached)
}
