package raftnode

import "sync"

// signal is a broadcast that carries no value: wait returns a channel that
// is closed at the next notify, and every notify replaces it. Waiters read
// the state they care about after the channel closes, so any number of
// changes between two waits collapse into one wake-up and none is missed:
// a waiter takes the channel before it reads the state, and any change
// after that read closes the channel it holds.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns the channel the next notify closes.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// notify wakes every current waiter.
func (s *signal) notify() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// Changed returns a channel that is closed at the next change of this
// node's view of the cluster: its Raft role, the leader it knows, the
// leader's readiness (its term's barrier applied), the Raft configuration,
// or the replicated node table. It does not fire for ordinary writes.
//
// The way to watch is: take the channel, read the state, and wait on the
// channel before reading again. Changes that happen while a reader is busy
// collapse into one wake-up; none is lost.
func (n *Node) Changed() <-chan struct{} { return n.fsm.changes.wait() }
