package raftnode

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// voteGate sits between the Raft transport and Raft and refuses every vote
// and pre-vote request until a time, answering them itself; every other
// RPC passes through. A node with read leases must not vote for anyone
// until the leases it may have granted before a restart have run out (see
// readLease); the gate lets it start Raft at once meanwhile, so that it
// takes entries, snapshots and its join without waiting. Before the gate,
// the node waited the whole lease before starting Raft, which a new node's
// install and a restarted follower's catch-up paid in full.
type voteGate struct {
	raft.LoopbackTransport // the real transport; its Consumer is replaced

	until    time.Time
	now      func() time.Time
	consumer chan raft.RPC
	stop     chan struct{}
	stopOnce sync.Once
}

// newVoteGate gates t's votes until until.
func newVoteGate(t raft.LoopbackTransport, until time.Time, now func() time.Time) *voteGate {
	g := &voteGate{LoopbackTransport: t, until: until, now: now, consumer: make(chan raft.RPC), stop: make(chan struct{})}
	go g.run()
	return g
}

// Consumer is where Raft takes its RPCs from.
func (g *voteGate) Consumer() <-chan raft.RPC { return g.consumer }

// Close stops the gate and closes the transport.
func (g *voteGate) Close() error {
	g.halt()
	return g.LoopbackTransport.Close()
}

// halt stops the gate's goroutine; RPCs are no longer handed to Raft.
func (g *voteGate) halt() { g.stopOnce.Do(func() { close(g.stop) }) }

func (g *voteGate) run() {
	in := g.LoopbackTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if g.refused(rpc) {
				continue
			}
			select {
			case g.consumer <- rpc:
			case <-g.stop:
				return
			}
		case <-g.stop:
			return
		}
	}
}

// refused answers rpc, and reports true, when it asks for a vote before
// the gate opens. The answer carries term 0: the candidate counts it as a
// vote not given and changes nothing else.
func (g *voteGate) refused(rpc raft.RPC) bool {
	if !g.now().Before(g.until) {
		return false
	}
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: req.ProtocolVersion}}, nil)
		return true
	case *raft.RequestPreVoteRequest:
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: req.ProtocolVersion}}, nil)
		return true
	}
	return false
}
