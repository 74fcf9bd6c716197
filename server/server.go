package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/raftnode"
)

// LeaderHealthService is the grpc.health.v1 service name that is SERVING
// only on the leader, so probes and clients can find it.
const LeaderHealthService = "sqlraft.v1.Leader"

// Options configure a Server.
type Options struct {
	// DefaultConsistency is used when a read leaves consistency unspecified
	// (default LINEARIZABLE).
	DefaultConsistency sqlraftv1.ReadConsistency
	// ForwardDialOptions are added when dialing the leader to forward.
	ForwardDialOptions []grpc.DialOption
	// StreamSendTimeout ends a QueryStream or Backup whose client has taken
	// no message for this long (--stream-send-timeout; default
	// DefaultStreamSendTimeout): see Server.send.
	StreamSendTimeout time.Duration
	// Users, when set, authenticates every call on the client port and
	// authorizes it by the method's permission (server/auth.go); nil
	// leaves everything open.
	Users *auth.Store
	// Reflection says who may use server reflection (default ReflectionOn).
	Reflection ReflectionMode
	// NodePeer reports whether a call comes from another node of the
	// cluster (its connection presented a verified node certificate), and
	// its name. Nil: no caller is ever a node, and forwarded calls carry
	// the caller's own authorization header.
	// With node TLS it is internal/tlsconfig.NodePeer, and Join is
	// accepted only from nodes whose certificates cover the addresses
	// they claim (joincheck.go).
	NodePeer func(ctx context.Context) (name string, ok bool)
	Logger   *slog.Logger
}

// Server serves DatabaseService, ClusterService, health and reflection for
// one node.
type Server struct {
	node    *raftnode.Node
	opts    Options
	fwd     *forwarder
	leaders *leaderWatch
	health  *health.Server
	logger  *slog.Logger
	stop    chan struct{}
}

// New returns a Server for node.
func New(node *raftnode.Node, opts Options) *Server {
	if opts.DefaultConsistency == sqlraftv1.ReadConsistency_READ_CONSISTENCY_UNSPECIFIED {
		opts.DefaultConsistency = sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StreamSendTimeout <= 0 {
		opts.StreamSendTimeout = DefaultStreamSendTimeout
	}
	fwdOpts := append(node.MessageLimit().ForwardDialOptions(), opts.ForwardDialOptions...)
	return &Server{node: node, opts: opts, fwd: newForwarder(fwdOpts), leaders: newLeaderWatch(node),
		health: health.NewServer(), logger: opts.Logger, stop: make(chan struct{})}
}

// GRPCServer builds a grpc.Server with every sqlraft service registered,
// panic recovery and request logging, and starts tracking health.
func (s *Server) GRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	rec := recovery.WithRecoveryHandler(func(p any) error {
		s.logger.Error("panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error; the node logged the details")
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(callLevel)}
	opts := append(s.node.MessageLimit().ServerOptions(),
		decodeCodecOption(), // with decodeDesc: undecodable requests are INVALID_ARGUMENT
		// Accept the keepalive pings other nodes' forwarding connections send.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(unaryCallLog(s.logger, logOpts...), recovery.UnaryServerInterceptor(rec), s.authUnary),
		// Calls run on a pool of goroutines, whose stacks have grown
		// already, rather than on a new goroutine each (growing its stack
		// took 6% of the CPU of a point read). grpc-go starts a goroutine
		// for a call that finds every worker busy: with 4 per core (8
		// here) most of 32 concurrent calls did, so the pool is sized for
		// a few hundred calls at once (an idle worker costs a few KB).
		grpc.NumStreamWorkers(256),
		grpc.ChainStreamInterceptor(logging.StreamServerInterceptor(slogAdapter(s.logger), logOpts...), recovery.StreamServerInterceptor(rec),
			s.authStream),
		grpc.MaxHeaderListSize(maxHeaderList),
		// A backup's 1 MiB messages go out in HTTP/2 frames of 16 KiB; with
		// grpc-go's 32 KiB write buffer that was a write system call for
		// every two frames. The buffer is taken from a pool while there is
		// something to write and given back once it is flushed, so an idle
		// connection holds none.
		grpc.WriteBufferSize(transportBuffer),
	)
	opts = append(opts, extra...)
	gs := grpc.NewServer(opts...)
	gs.RegisterService(decodeDesc(&sqlraftv1.DatabaseService_ServiceDesc), &database{s: s})
	gs.RegisterService(decodeDesc(&sqlraftv1.ClusterService_ServiceDesc), &cluster{s: s})
	healthpb.RegisterHealthServer(gs, s.health)
	if s.opts.Reflection != ReflectionOff {
		reflection.Register(gs)
	}
	go s.trackHealth()
	go s.watchLeaders()
	return gs
}

// HealthGRPCServer builds a grpc.Server that serves only grpc.health.v1,
// from the same health state as the client API (for a plaintext probe
// port, --health-addr).
func (s *Server) HealthGRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	opts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(64 << 10), grpc.MaxHeaderListSize(64 << 10)}, extra...)
	gs := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(gs, s.health)
	return gs
}

// transportBuffer is the size of the client API's write buffer, per
// connection while it has something to send.
const transportBuffer = 512 << 10

// callLevel logs failed calls that point at a server problem at warn, and
// everything else at debug.
func callLevel(c codes.Code) logging.Level {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return logging.LevelWarn
	}
	return logging.LevelDebug
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// trackHealth keeps grpc.health.v1 current: "" is SERVING once the node
// knows a leader and has caught up; LeaderHealthService only on the leader.
// It re-checks whenever the node's view changes, and every healthRecheck
// besides: catching up (the apply lag) moves without a change signal.
func (s *Server) trackHealth() {
	for {
		changed := s.node.Changed()
		ready, leader := healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
		if s.node.Ready() {
			ready = healthpb.HealthCheckResponse_SERVING
			if s.node.IsLeader() {
				leader = healthpb.HealthCheckResponse_SERVING
			}
		}
		s.health.SetServingStatus("", ready)
		s.health.SetServingStatus(LeaderHealthService, leader)
		select {
		case <-s.stop:
			return
		case <-changed:
		case <-time.After(healthRecheck):
		}
	}
}

// healthRecheck is how often health is re-evaluated without a change: the
// time an apply stall or a caught-up follower takes to show in probes.
const healthRecheck = 500 * time.Millisecond

// Shutdown marks every health service NOT_SERVING for good and stops the
// server's background work. Calls in flight go on (forwarded ones too):
// call it before stopping the grpc.Server, and Close after.
func (s *Server) Shutdown() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.health.Shutdown()
}

// Close closes the connections used for forwarding. Call it once the
// grpc.Server has stopped.
func (s *Server) Close() {
	s.Shutdown()
	s.fwd.close()
}

// header describes this node's view for a response reflecting index.
func (s *Server) header(index uint64) *sqlraftv1.ResponseHeader {
	id, addr := s.node.Leader()
	return &sqlraftv1.ResponseHeader{NodeId: s.node.ID(), LeaderId: id, LeaderAddress: addr,
		RaftIndex: index, RaftTerm: s.node.Term()}
}

// level resolves a request's consistency.
func (s *Server) level(c sqlraftv1.ReadConsistency, freshness time.Duration) (sqlraftv1.ReadConsistency, error) {
	if freshness < 0 {
		return 0, invalid("freshness must not be negative")
	}
	switch c {
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_UNSPECIFIED:
		return s.opts.DefaultConsistency, nil
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK,
		sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG:
		return c, nil
	}
	return 0, invalid("unknown consistency %d; use NONE, WEAK, LINEARIZABLE or STRONG", int32(c))
}

// mustForward reports whether a read at level must be served by the leader
// and this node is not it.
func (s *Server) mustForward(level sqlraftv1.ReadConsistency) bool {
	return level != sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE && !s.node.IsLeader()
}

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("sqlraft server for node %s", s.node.ID()) }
