package raftnode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
)

// Errors the request paths return; the server maps them to gRPC codes.
var (
	// ErrNotLeader: this node is not the leader (see Leader for who is).
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: no leader is known; the cluster may be electing one.
	ErrNoLeader = errors.New("no leader known")
	// ErrOutcomeUnknown: leadership was lost after the entry was proposed;
	// it may or may not have been applied.
	ErrOutcomeUnknown = errors.New("leadership lost while the write was in flight; its outcome is unknown")
	// ErrStale: the node last heard from the leader longer ago than allowed.
	ErrStale = errors.New("this node's data is older than the freshness bound")
)

// Applied is the outcome of an entry applied through the log.
type Applied struct {
	Results []*sqlraftv1.RequestResult
	Index   uint64
	Term    uint64
}

// Write proposes a request (writes, possibly mixed with reads) and returns
// once it is committed and applied on this node, the leader.
func (n *Node) Write(ctx context.Context, req *sqlraftv1.RequestRequest) (*Applied, error) {
	return n.propose(ctx, &raftlogv1.Command{Kind: &raftlogv1.Command_Request{Request: req}})
}

// StrongRead runs a read through the log: the answer reflects every write
// committed before it, at the price of a log entry.
func (n *Node) StrongRead(ctx context.Context, req *sqlraftv1.QueryRequest) (*Applied, error) {
	return n.propose(ctx, &raftlogv1.Command{Kind: &raftlogv1.Command_Query{Query: req}})
}

func (n *Node) propose(ctx context.Context, cmd *raftlogv1.Command) (*Applied, error) {
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	var seed [8]byte
	rand.Read(seed[:])
	cmd.NowUnixNanos = time.Now().UnixNano()
	cmd.RandomSeed = binary.LittleEndian.Uint64(seed[:])
	cmd.Proposer = n.cfg.ID
	l := n.cfg.EntryLimits
	cmd.Limits = &raftlogv1.EntryLimits{MaxSteps: l.Steps, MaxRows: l.Rows, MaxBytes: l.Bytes, MaxResultBytes: l.ResultBytes}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	if len(data) > n.cfg.limit.EntryBytes() {
		// Refused before it reaches the log: an entry no peer would accept
		// would stop every write after it.
		return nil, &msglimit.TooLargeError{What: "log entry", Size: len(data), Limit: n.cfg.limit.Bytes()}
	}
	defer n.fsm.proposed.add(data, cmd)()
	f := n.raft.Apply(data, deadlineOr(ctx, 10*time.Second))
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, n.applyError(err)
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return nil, fmt.Errorf("unexpected FSM response %T", f.Response())
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return &Applied{Results: res.Results, Index: f.Index(), Term: n.term()}, nil
}

func (n *Node) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrNoLeader // nothing was appended: retrying is safe
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrOutcomeUnknown
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return context.DeadlineExceeded
	}
	return err
}

// notLeader returns ErrNotLeader, or ErrNoLeader when no leader is known.
func (n *Node) notLeader() error {
	if id, _ := n.Leader(); id == "" {
		return ErrNoLeader
	}
	return ErrNotLeader
}

// Leader returns the leader's ID and client address as this node knows them.
func (n *Node) Leader() (id, grpcAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.fsm.NodeAddress(string(lid))
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LinearizableRead returns once a local read would be linearizable: this
// node has confirmed with a quorum that it leads and has applied everything
// committed when the read began. It returns the index the read reflects.
func (n *Node) LinearizableRead(ctx context.Context) (uint64, error) {
	if err := n.checkLeaderReady(ctx); err != nil {
		return 0, err
	}
	if n.lease != nil {
		// The commit index is noted before the lease is checked: if the
		// lease holds now, no other leader existed when it was noted.
		idx := n.raft.CommitIndex()
		if n.lease.valid() {
			if err := n.fsm.WaitApplied(ctx, n.stateIndex(idx)); err != nil {
				return 0, err
			}
			return idx, nil
		}
		n.lease.renewAsync()
	}
	idx, err := n.reads.confirm(ctx)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, n.notLeader()
		}
		return 0, n.applyError(err)
	}
	if err := n.fsm.WaitApplied(ctx, n.stateIndex(idx)); err != nil {
		return 0, err
	}
	return idx, nil
}

// WeakRead checks that this node believes it is the leader (and has applied
// its own term's barrier), without a quorum round.
func (n *Node) WeakRead(ctx context.Context) error { return n.checkLeaderReady(ctx) }

// checkLeaderReady fails unless this node leads; a new leader waits (within
// ctx) until it has applied everything its predecessors committed.
func (n *Node) checkLeaderReady(ctx context.Context) error {
	for {
		changed := n.Changed()
		if n.raft.State() != raft.Leader {
			return n.notLeader()
		}
		n.mu.Lock()
		ready := n.readyTerm == n.term()
		n.mu.Unlock()
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// FreshRead checks a NONE read's freshness bound: a follower must have heard
// from the leader within maxAge. The leader always passes.
func (n *Node) FreshRead(maxAge time.Duration) error {
	if maxAge <= 0 || n.raft.State() == raft.Leader {
		return nil
	}
	last := n.raft.LastContact()
	if last.IsZero() || time.Since(last) > maxAge {
		return fmt.Errorf("%w: last contact %v ago, bound %v", ErrStale, time.Since(last).Round(time.Millisecond), maxAge)
	}
	return nil
}

func (n *Node) term() uint64 {
	return n.raft.CurrentTerm()
}
