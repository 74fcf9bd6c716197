package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Read-your-writes: a read may name the Raft index it must reflect
// (Read.MinIndex, the raft_index of an earlier response's header). The node
// that serves it waits until its FSM has applied that index, woken by the
// FSM's apply notification, within the caller's deadline and MaxQueryTime.
// The answer's index is then at least MinIndex: entries between the
// database's position and MinIndex are ones the FSM never sees.

// IndexNotAppliedError is returned when a read's MinIndex was not applied on
// this node before its wait ended.
type IndexNotAppliedError struct {
	// MinIndex is the index the read asked for.
	MinIndex uint64
	// Applied is this node's applied index when the wait ended.
	Applied uint64
}

func (e *IndexNotAppliedError) Error() string {
	return fmt.Sprintf("this node has applied the Raft log up to index %d, not yet to the read's min_raft_index %d; "+
		"retry later or at another node, or allow a longer deadline", e.Applied, e.MinIndex)
}

// indexRecheck is how often a wait looks again while the index it waits for
// is beyond this node's commit index: entries the FSM never sees (no-ops,
// barriers) advance the commit index without an apply notification.
const indexRecheck = 50 * time.Millisecond

// IndexWaiters is how many reads are waiting on this node for their
// MinIndex now.
func (n *Node) IndexWaiters() int64 { return n.indexWaiters.Load() }

// waitIndex returns once this node's database reflects entry i (at once for
// i == 0), or an *IndexNotAppliedError when MaxQueryTime, or the caller's
// deadline less a margin (answerMargin) for the answer to reach the caller,
// ends first. A cancelled ctx returns its error.
func (n *Node) waitIndex(ctx context.Context, i uint64) error {
	if i == 0 || n.fsm.Applied() >= i {
		return nil
	}
	bound := n.cfg.MaxQueryTime
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		bound = min(bound, left-answerMargin(left))
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	n.indexWaiters.Add(1)
	defer n.indexWaiters.Add(-1)
	for {
		applied := n.fsm.appliedChanged()
		reached, committed := n.indexReached(i)
		if reached {
			return nil
		}
		if err := n.awaitApply(ctx, wctx, applied, !committed); err != nil {
			if errors.Is(err, errWaitEnded) {
				return &IndexNotAppliedError{MinIndex: i, Applied: n.fsm.Applied()}
			}
			return err
		}
	}
}

// errWaitEnded: a wait's own bound ended it.
var errWaitEnded = errors.New("wait bound reached")

// awaitApply waits for the next apply (applied closing), or indexRecheck
// when recheck is set; it returns errWaitEnded when wctx ends first, ctx's
// error when the caller cancelled.
func (n *Node) awaitApply(ctx, wctx context.Context, applied <-chan struct{}, recheck bool) error {
	var tick <-chan time.Time
	if recheck {
		t := time.NewTimer(indexRecheck)
		defer t.Stop()
		tick = t.C
	}
	select {
	case <-applied:
	case <-tick:
	case <-n.fsm.stop:
		return ErrShutdown
	case <-wctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		return errWaitEnded
	}
	return nil
}

// answerMargin is how long before a caller's deadline a wait gives up, so
// that its FAILED_PRECONDITION reaches the caller before the deadline does:
// a quarter of the time left, at most 250 ms.
func answerMargin(left time.Duration) time.Duration { return min(left/4, 250*time.Millisecond) }

// indexReached reports whether the database reflects entry i, and whether
// i is committed on this node (below it, the log tells which entries the FSM
// never sees; an uncommitted entry may still be replaced, so it is not
// looked at).
func (n *Node) indexReached(i uint64) (reached, committed bool) {
	applied := n.fsm.Applied()
	if applied >= i {
		return true, true
	}
	if i > n.raft.CommitIndex() {
		return false, false
	}
	return applied >= n.stateIndex(i), true
}
