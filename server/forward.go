package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sqlraft/sqlraft/raftnode"
)

// Metadata keys that steer forwarding.
const (
	// MetadataNoForward, set to "true" by a client, makes a follower answer
	// FAILED_PRECONDITION (NOT_LEADER, naming the leader) instead of
	// forwarding the request.
	MetadataNoForward = "sqlraft-no-forward"
	// metadataForwarded marks a request one node forwarded to another, so a
	// node that is not the leader either does not forward it again.
	metadataForwarded = "sqlraft-forwarded-by"
)

// forwarder keeps one client connection per leader address.
type forwarder struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
	opts  []grpc.DialOption
}

func newForwarder(opts []grpc.DialOption) *forwarder {
	return &forwarder{conns: map[string]*grpc.ClientConn{},
		opts: append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)}
}

func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, f.opts...)
	if err != nil {
		return nil, err
	}
	f.conns[addr] = c
	return c, nil
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, c := range f.conns {
		c.Close()
		delete(f.conns, addr)
	}
}

// toLeader returns a connection to the leader and the context to call it
// with, or the status to answer when the request must not be forwarded.
func (s *Server) toLeader(ctx context.Context) (*grpc.ClientConn, context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	id, addr := s.leaderAddress(ctx)
	if id == "" {
		return nil, nil, s.toStatus(raftnode.ErrNoLeader)
	}
	if first(md, MetadataNoForward) == "true" || first(md, metadataForwarded) != "" || id == s.node.ID() {
		return nil, nil, s.toStatus(raftnode.ErrNotLeader)
	}
	if addr == "" {
		return nil, nil, status.Errorf(codes.Unavailable, "leader %s has not published its client address yet; retry shortly", id)
	}
	conn, err := s.fwd.conn(addr)
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "dial leader %s at %s: %v", id, addr, err)
	}
	return conn, metadata.AppendToOutgoingContext(ctx, metadataForwarded, s.node.ID()), nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return strings.ToLower(strings.TrimSpace(v[0]))
	}
	return ""
}

// leaderAddress returns the leader's ID and client address. A new leader
// publishes its address through the log right after its election, so a
// follower that knows the leader but not yet its address waits briefly.
func (s *Server) leaderAddress(ctx context.Context) (id, addr string) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		id, addr = s.node.Leader()
		if id == "" || addr != "" || time.Now().After(deadline) {
			return id, addr
		}
		select {
		case <-ctx.Done():
			return id, addr
		case <-time.After(20 * time.Millisecond):
		}
	}
}
