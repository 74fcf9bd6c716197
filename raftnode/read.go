package raftnode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// readIndex implements linearizable reads without writing to the log: the
// leader notes its commit index, confirms with a quorum that it is still
// leader, and the read proceeds once the FSM has applied up to the noted
// index.
//
// Reads share confirmation rounds, and rounds overlap: a read joins the
// next round that starts after it arrived, and a round starts as soon as a
// read waits and fewer than maxRounds rounds are in flight. Under load, N
// concurrent reads cost a few heartbeat rounds, not N, and a read no longer
// waits for the round in flight to finish before its own can start (the
// rounds used to run strictly one after another, so a read arriving just
// after one started waited almost two round trips).
type readIndex struct {
	raft      quorum
	maxRounds int

	reads, confirmations atomic.Uint64 // for Status

	mu       sync.Mutex
	waiting  []chan readResult
	inFlight int // rounds started and not yet answered
	closed   bool
}

// quorum is what readIndex needs of Raft (*raft.Raft has it).
type quorum interface {
	CommitIndex() uint64
	VerifyLeader() raft.Future
}

type readResult struct {
	index uint64
	err   error
}

// ErrShutdown: the node is shutting down.
var ErrShutdown = errors.New("raftnode: node is shutting down")

// readRounds is how many confirmation rounds may be in flight at once.
// hashicorp/raft sends at most one heartbeat per follower at a time, and
// any response that arrives after a round registered counts for it, so
// more rounds than this only queue in Raft's main loop.
const readRounds = 4

func newReadIndex(r quorum) *readIndex { return &readIndex{raft: r, maxRounds: readRounds} }

// confirm returns a commit index recorded after the call began and
// confirmed by a quorum round that started after it was recorded.
func (r *readIndex) confirm(ctx context.Context) (uint64, error) {
	ch := make(chan readResult, 1)
	r.reads.Add(1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, ErrShutdown
	}
	r.waiting = append(r.waiting, ch)
	r.startLocked()
	r.mu.Unlock()
	select {
	case res := <-ch:
		return res.index, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// startLocked starts a round for every waiting read, unless none waits or
// maxRounds rounds are in flight (the last of them to end starts it then).
func (r *readIndex) startLocked() {
	if len(r.waiting) == 0 || r.inFlight >= r.maxRounds {
		return
	}
	batch := r.waiting
	r.waiting = nil
	r.inFlight++
	go r.round(batch)
}

// round confirms leadership for batch: the commit index is noted first,
// then a quorum asked.
func (r *readIndex) round(batch []chan readResult) {
	r.confirmations.Add(1)
	index := r.raft.CommitIndex()
	err := r.raft.VerifyLeader().Error()
	for _, ch := range batch {
		ch <- readResult{index: index, err: err}
	}
	r.mu.Lock()
	r.inFlight--
	r.startLocked()
	r.mu.Unlock()
}

// close fails the reads still waiting for a round, and every later one.
func (r *readIndex) close() {
	r.mu.Lock()
	r.closed = true
	waiting := r.waiting
	r.waiting = nil
	r.mu.Unlock()
	for _, ch := range waiting {
		ch <- readResult{err: ErrShutdown}
	}
}

// stateIndex returns the index the FSM must have applied for its state to
// include entry i: entries Raft never hands to the FSM (no-ops, barriers)
// change nothing, so the answer is the last command or configuration entry
// at or before i, or 0 when the log no longer holds it (it is then inside
// the snapshot the FSM started from).
//
// Every linearizable read asks this for its round's commit index, and health
// checks ask it too, so the answer for the last index asked is kept: an
// entry at or below a commit index never changes, so neither does the
// answer. Without it, each read decoded the last log entry (however large)
// from the log store.
func (n *Node) stateIndex(i uint64) uint64 {
	return n.stateIndexes.get(i, func() (uint64, bool) {
		last, known := n.lastStateEntry(i)
		if !known {
			return 0, false // not kept: the next asker looks again
		}
		return last, true
	})
}

// stateIndexMemo remembers stateIndex's last answer. Concurrent askers of
// the same index wait for one computation.
type stateIndexMemo struct {
	mu     sync.Mutex
	valid  bool
	i, ans uint64
}

// get returns the kept answer for i, or computes it; compute says whether
// its answer may be kept.
func (m *stateIndexMemo) get(i uint64, compute func() (uint64, bool)) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.valid && m.i == i {
		return m.ans
	}
	ans, keep := compute()
	m.i, m.ans, m.valid = i, ans, keep
	return ans
}

// lastStateEntry returns the last command or configuration entry at or
// before i, walking back over no-ops and barriers; known is false when the
// log no longer holds the entries needed to tell.
func (n *Node) lastStateEntry(i uint64) (last uint64, known bool) {
	first, err := n.logs.FirstIndex()
	if err != nil {
		return i, false
	}
	for ; i >= first && i > 0; i-- {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return i, false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i, true
		}
	}
	return i, false
}
