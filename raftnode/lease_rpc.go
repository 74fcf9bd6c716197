package raftnode

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// leaseServer serves ReadLeaseService on the Raft gRPC server. Raft starts
// after the server does, so it is set once Raft exists.
type leaseServer struct {
	sqlraftv1.UnimplementedReadLeaseServiceServer
	raft *atomic.Pointer[raft.Raft]
}

// Grant answers a leader's question (answerLease).
func (s leaseServer) Grant(_ context.Context, req *sqlraftv1.GrantRequest) (*sqlraftv1.GrantResponse, error) {
	a := answerLease(s.raft.Load(), leaseQuestion{leaderID: req.GetLeaderId(), term: req.GetTerm()})
	if !a.following {
		return &sqlraftv1.GrantResponse{}, nil
	}
	// Rounded up: the leader must never think the contact more recent
	// than it was.
	return &sqlraftv1.GrantResponse{Following: true, ContactAgeMicros: int64((a.contactAge + time.Microsecond - 1) / time.Microsecond)}, nil
}

// leaseClients keeps one connection per voter's Raft address for the
// lease's questions; they close with the node.
type leaseClients struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[raft.ServerAddress]*grpc.ClientConn
	closed bool
}

// ask sends q to s and returns its answer.
func (c *leaseClients) ask(ctx context.Context, s raft.Server, q leaseQuestion) (leaseAnswer, error) {
	cc, err := c.conn(s.Address)
	if err != nil {
		return leaseAnswer{}, err
	}
	resp, err := sqlraftv1.NewReadLeaseServiceClient(cc).Grant(ctx, &sqlraftv1.GrantRequest{LeaderId: q.leaderID, Term: q.term})
	if err != nil {
		return leaseAnswer{}, err
	}
	return leaseAnswer{following: resp.GetFollowing(), contactAge: time.Duration(resp.GetContactAgeMicros()) * time.Microsecond}, nil
}

func (c *leaseClients) conn(addr raft.ServerAddress) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrShutdown
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(string(addr), c.opts...)
	if err != nil {
		return nil, err
	}
	if c.conns == nil {
		c.conns = map[raft.ServerAddress]*grpc.ClientConn{}
	}
	c.conns[addr] = cc
	return cc, nil
}

// retain closes the connections to anyone not in voters.
func (c *leaseClients) retain(voters []raft.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.conns {
		if !slices.ContainsFunc(voters, func(s raft.Server) bool { return s.Address == addr }) {
			cc.Close()
			delete(c.conns, addr)
		}
	}
}

// close closes every connection; later questions fail.
func (c *leaseClients) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
}
