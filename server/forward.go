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
	fctx, cancel := context.WithCancelCause(s.forwardIdentity(ctx, metadata.AppendToOutgoingContext(ctx, metadataForwarded, s.node.ID())))
	defer cancel(nil)
	stop := context.AfterFunc(s.leaders.follow(id), func() { cancel(errLeaderChanged) })
	defer stop()
	resp, err := call(fctx, conn)
	if err != nil && errors.Is(context.Cause(fctx), errLeaderChanged) && ctx.Err() == nil {
		return zero, withInfo(codes.Unavailable, fmt.Sprintf("leader %s stopped leading while the request was forwarded to it; "+
			"a write's outcome is unknown", id), ReasonOutcomeUnknown, nil)
	}
	return resp, err
}

// leaderWatch hands out, for the leader this node currently sees, a context
// that is cancelled (cause errLeaderChanged) as soon as it sees another
// leader or none: one context per leadership, shared by every call
// forwarded to it, so a forwarded call costs no goroutine of its own.
type leaderWatch struct {
	node   *raftnode.Node
	mu     sync.Mutex
	id     string // the leader ctx belongs to
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newLeaderWatch(node *raftnode.Node) *leaderWatch {
	w := &leaderWatch{node: node}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	return w
}

// update moves to the leader the node sees now, cancelling the previous
// leadership's context if that changed.
func (w *leaderWatch) update() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updateLocked()
}

func (w *leaderWatch) updateLocked() {
	id, _ := w.node.Leader()
	if id == w.id {
		return
	}
	w.cancel(errLeaderChanged)
	w.id = id
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
}

// follow returns the context of id's leadership; it is already cancelled
// when this node no longer sees id as the leader.
func (w *leaderWatch) follow(id string) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.updateLocked()
	if w.id != id {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errLeaderChanged)
		return ctx
	}
	return w.ctx
}

// watchLeaders keeps s.leaders current: it wakes on every change of the
// node's view and updates the leadership contexts.
func (s *Server) watchLeaders() {
	for {
		changed := s.node.Changed()
		s.leaders.update()
		select {
		case <-s.stop:
			return
		case <-changed:
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
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	for {
		changed := s.node.Changed()
		id, addr = s.node.Leader()
		if id == "" || addr != "" {
			return id, addr
		}
		select {
		case <-ctx.Done():
			return id, addr
		case <-deadline.C:
			return id, addr
		case <-changed:
		}
	}
}
