package raftnode

import (
	"context"
	"time"

	pb "github.com/Jille/raft-grpc-transport/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// Reconnecting to a peer that was down (see DESIGN.md, "A follower that
// comes back"). Two back-offs made a follower that had been down for a
// minute wait up to half a minute more before the leader sent it anything:
// grpc-go's reconnect back-off (1 s growing ×1.6 up to 120 s), during which
// every call on the connection fails at once, and hashicorp/raft's
// replication back-off (10 ms doubling per failed call up to 10.24 s, not
// configurable). RaftReconnectMaxDelay caps the first; waiting for the
// connection (below) keeps the second from growing.
const (
	// RaftReconnectMaxDelay is the longest pause between two attempts to
	// reconnect to a peer.
	RaftReconnectMaxDelay = time.Second
	// RaftConnectTimeout bounds one connection attempt (a peer whose
	// packets are dropped makes an attempt last this long).
	RaftConnectTimeout = 3 * time.Second
	// RaftPeerWait is how long a replication call (an AppendEntries with
	// entries, or an InstallSnapshot) made while the connection to its peer
	// is down waits for the connection before failing.
	RaftPeerWait = 30 * time.Second
)

// raftConnectParams is the reconnect policy of Raft connections (and of
// snapshot pulls): attempts 100 ms apart at first, at most
// RaftReconnectMaxDelay apart later.
func raftConnectParams() grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: RaftReconnectMaxDelay},
		MinConnectTimeout: RaftConnectTimeout,
	}
}

// Methods of the transport's service (its proto has no package).
const (
	appendEntriesMethod   = "/RaftTransport/AppendEntries"
	installSnapshotMethod = "/RaftTransport/InstallSnapshot"
)

// peerWait makes Raft's replication calls wait for a peer that is down
// instead of failing at once.
//
// hashicorp/raft counts every failed AppendEntries or InstallSnapshot to a
// follower and sleeps 10 ms × 2^(failures-2), at most 10.24 s, before the
// next one; only a success resets the count. A call on a connection in
// reconnect back-off fails in microseconds, so a follower that is down for
// half a minute reaches the cap, and once it is back the leader may still
// sleep ten seconds before trying it. With peerWait, such a call waits (at
// most wait, or until the node closes) for the connection to become ready,
// then goes out: during an outage the count grows by one per wait instead
// of once per back-off, and a call is usually already waiting when the
// peer comes back. Heartbeats (AppendEntries without entries) still fail at
// once: Raft caps their back-off at half the heartbeat timeout, and they are
// what tells a leader that a follower is gone.
type peerWait struct {
	closing context.Context // ends every wait (the node is closing)
	wait    time.Duration   // AppendEntries
	snap    time.Duration   // InstallSnapshot: below the lease idle timeout
}

// unary is the interceptor for unary calls.
func (w peerWait) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method == appendEntriesMethod && !isHeartbeat(req) {
		w.waitReady(cc, w.wait)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// stream is the interceptor for streaming calls.
func (w peerWait) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method == installSnapshotMethod {
		// The snapshot's lease is idle meanwhile: wait less than its timeout.
		w.waitReady(cc, w.snap)
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// waitReady waits until cc is ready, for at most d.
func (w peerWait) waitReady(cc *grpc.ClientConn, d time.Duration) {
	ctx, cancel := context.WithTimeout(w.closing, d)
	defer cancel()
	for {
		s := cc.GetState()
		if s == connectivity.Ready || s == connectivity.Shutdown {
			return
		}
		cc.Connect()
		if !cc.WaitForStateChange(ctx, s) {
			return
		}
	}
}

// isHeartbeat mirrors the transport's test: Raft's heartbeat sets only the
// term and the leader.
func isHeartbeat(req any) bool {
	r, ok := req.(*pb.AppendEntriesRequest)
	return ok && len(r.GetEntries()) == 0 && r.GetPrevLogEntry() == 0 && r.GetPrevLogTerm() == 0 &&
		r.GetLeaderCommitIndex() == 0
}

// raftDialOptions are the dial options of Raft connections and snapshot
// pulls (without the caller's Config.RaftDialOptions).
func (n *Node) raftDialOptions() []grpc.DialOption {
	return raftDialOptions(n.closing, n.cfg)
}

func raftDialOptions(closing context.Context, cfg Config) []grpc.DialOption {
	w := peerWait{closing: closing, wait: RaftPeerWait, snap: min(RaftPeerWait, cfg.leaseIdleTimeout()/2)}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecureCreds()),
		grpc.WithKeepaliveParams(raftKeepalive()),
		grpc.WithConnectParams(raftConnectParams()),
		grpc.WithChainUnaryInterceptor(w.unary),
		grpc.WithChainStreamInterceptor(w.stream),
	}, raftFlowDialOptions()...) // flow.go
	opts = append(opts, cfg.limit.RaftDialOptions()...)
	return append(opts, cfg.RaftDialOptions...)
}
