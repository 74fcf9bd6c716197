package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
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

// Keepalive on forwarding connections, so a leader that vanished without
// closing its connections (a killed container) is noticed.
var forwardKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}

func newForwarder(opts []grpc.DialOption) *forwarder {
	return &forwarder{conns: map[string]*grpc.ClientConn{},
		opts: append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithKeepaliveParams(forwardKeepalive)}, opts...)}
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

// errLeaderChanged cancels a forwarded call whose target stopped leading.
var errLeaderChanged = errors.New("leader changed")

// forward runs call against the leader, or returns the status to answer
// when the request must not be forwarded. The call carries the caller's
// deadline. If this node sees leadership move away from the target while
// the call runs (the leader died, say, and its connection went silent), the
// call is cancelled and the client gets UNAVAILABLE at once rather than at
// its deadline.
func forward[T any](s *Server, ctx context.Context, call func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	md, _ := metadata.FromIncomingContext(ctx)
	id, addr := s.leaderAddress(ctx)
	if id == "" {
		return zero, s.toStatus(raftnode.ErrNoLeader)
	}
	if first(md, MetadataNoForward) == "true" || first(md, metadataForwarded) != "" || id == s.node.ID() {
		return zero, s.toStatus(raftnode.ErrNotLeader)
	}
	if addr == "" {
		return zero, status.Errorf(codes.Unavailable, "leader %s has not published its client address yet; retry shortly", id)
	}
	conn, err := s.fwd.conn(addr)
	if err != nil {
		return zero, status.Errorf(codes.Unavailable, "dial leader %s at %s: %v", id, addr, err)
	}
	fctx, cancel := context.WithCancelCause(metadata.AppendToOutgoingContext(ctx, metadataForwarded, s.node.ID()))
	defer cancel(nil)
	go s.watchLeader(fctx, id, cancel)
	resp, err := call(fctx, conn)
	if err != nil && errors.Is(context.Cause(fctx), errLeaderChanged) && ctx.Err() == nil {
		return zero, withInfo(codes.Unavailable, fmt.Sprintf("leader %s stopped leading while the request was forwarded to it; "+
			"a write's outcome is unknown", id), ReasonOutcomeUnknown, nil)
	}
	return resp, err
}

// watchLeader cancels ctx when this node stops seeing id as the leader.
func (s *Server) watchLeader(ctx context.Context, id string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if now, _ := s.node.Leader(); now != id {
				cancel(errLeaderChanged)
				return
			}
		}
	}
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
