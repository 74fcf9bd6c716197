package raftnode

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/snapshot"
)

// Status is a snapshot of the node's Raft state.
type Status struct {
	ID            string
	State         string
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64
	LastLogIndex  uint64
	FirstLogIndex uint64
	RaftAddress   string
	GRPCAddress   string
	LastContact   time.Duration
	DBSize        int64
	// LinearizableReads and ReadIndexRounds count linearizable reads and the
	// leadership confirmation rounds they shared, since start.
	LinearizableReads uint64
	ReadIndexRounds   uint64
	// AppliedEntries and ApplyTransactions count entries applied and the
	// SQLite transactions they shared, since start.
	AppliedEntries, ApplyTransactions uint64
}

// Status reports the node's state.
func (n *Node) Status() Status {
	first, _ := n.logStore.FirstIndex()
	st := Status{
		ID: n.cfg.ID, State: n.raft.State().String(), Term: n.term(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.Applied(), LastLogIndex: n.raft.LastIndex(),
		FirstLogIndex: first, RaftAddress: n.cfg.RaftAdvertise, GRPCAddress: n.cfg.GRPCAdvertise,
		DBSize: n.db.Size(), LinearizableReads: n.reads.reads.Load(), ReadIndexRounds: n.reads.confirmations.Load(),
	}
	st.AppliedEntries, st.ApplyTransactions = n.fsm.Batching()
	if lc := n.raft.LastContact(); !lc.IsZero() {
		st.LastContact = time.Since(lc)
	}
	return st
}

// Term is the node's current Raft term.
func (n *Node) Term() uint64 { return n.term() }

// Snapshot takes a Raft snapshot now and describes it.
func (n *Node) Snapshot() (snapshot.Info, error) {
	if err := n.raft.Snapshot().Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return snapshot.Info{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return snapshot.Info{}, err
	}
	info, ok := n.snapshots.Latest()
	if !ok {
		return snapshot.Info{}, errors.New("snapshot taken but not listed")
	}
	return info, nil
}

// Snapshots is the node's snapshot store.
func (n *Node) Snapshots() SnapshotStore { return n.snapshots }
