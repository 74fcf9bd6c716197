package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
)

// MetadataForwardedUser carries, from a follower to the leader, the name of
// the caller the follower authenticated ("*" for an anonymous one). The
// leader trusts it only from a node peer (Options.NodePeer); anyone else
// sending it is refused with PERMISSION_DENIED.
const MetadataForwardedUser = "sqlraft-forwarded-user"

// metadataAuthorization is the standard credentials header.
const metadataAuthorization = "authorization"

// maxHeaderList caps the metadata of one call on the client port: real
// credentials are far below it, and a client sending a megabyte of headers
// is refused by the transport before anything parses them.
const maxHeaderList = 64 << 10

// ReflectionMode says who may use server reflection on the client port.
type ReflectionMode int

// Reflection modes (--reflection).
const (
	// ReflectionOn: anyone (the default).
	ReflectionOn ReflectionMode = iota
	// ReflectionAuthenticated: callers with valid credentials or a user
	// certificate, and nodes; not anonymous ones.
	ReflectionAuthenticated
	// ReflectionOff: reflection is not served.
	ReflectionOff
)

// ParseReflectionMode parses "on", "authenticated" or "off".
func ParseReflectionMode(s string) (ReflectionMode, error) {
	switch s {
	case "on":
		return ReflectionOn, nil
	case "authenticated":
		return ReflectionAuthenticated, nil
	case "off":
		return ReflectionOff, nil
	}
	return 0, fmt.Errorf("reflection mode %q is not one of on, authenticated, off", s)
}

// methodPermissions is the right each RPC of the client API needs. A method
// missing here is refused to everyone but an all-powerful user (see
// authorize); the tests compare it with the service descriptors. Request
// needs execute, or query when every statement only reads: the interceptor
// admits either, and the node checks which once it has classified the
// statements (requestCheck).
var methodPermissions = map[string]auth.Permission{
	sqlraftv1.DatabaseService_Execute_FullMethodName:           auth.Execute,
	sqlraftv1.DatabaseService_Query_FullMethodName:             auth.Query,
	sqlraftv1.DatabaseService_Request_FullMethodName:           auth.Execute | auth.Query,
	sqlraftv1.DatabaseService_QueryStream_FullMethodName:       auth.Stream,
	sqlraftv1.DatabaseService_Backup_FullMethodName:            auth.Backup,
	sqlraftv1.ClusterService_Join_FullMethodName:               auth.Join,
	sqlraftv1.ClusterService_Remove_FullMethodName:             auth.Remove,
	sqlraftv1.ClusterService_TransferLeadership_FullMethodName: auth.Remove,
	sqlraftv1.ClusterService_Nodes_FullMethodName:              auth.Status,
	sqlraftv1.ClusterService_Status_FullMethodName:             auth.Status,
	sqlraftv1.ClusterService_Checksum_FullMethodName:           auth.Status,
	sqlraftv1.ClusterService_Snapshot_FullMethodName:           auth.Snapshot,
}

// nodeMethods are what a node may call on its own behalf (joining,
// publishing its address, probes); anything else it sends on a caller's
// behalf, with MetadataForwardedUser.
var nodeMethods = map[string]bool{
	sqlraftv1.ClusterService_Join_FullMethodName:   true,
	sqlraftv1.ClusterService_Status_FullMethodName: true,
	sqlraftv1.ClusterService_Nodes_FullMethodName:  true,
}

// caller is who made a call, as authorize established it.
type caller struct {
	auth.Identity
	node          string // a node calling on its own behalf (no Identity)
	authenticated bool   // credentials, a user certificate, a forwarded name or a node
}

type callerKey struct{}

// callerFrom returns the caller authorize stored in ctx, or nil when the
// node has no users file.
func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// authedStream is a server stream whose context holds its caller.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context, with the caller.
func (s authedStream) Context() context.Context { return s.ctx }

// authorize decides whether the call may go on: it identifies the caller
// and checks the method's permission. It returns ctx with the caller.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	if s.opts.Users == nil || strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return ctx, nil // no users file: everything open; health: always
	}
	reflection := strings.HasPrefix(method, "/grpc.reflection.")
	if reflection && s.opts.Reflection == ReflectionOn {
		return ctx, nil
	}
	c, err := s.identify(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, callerKey{}, c)
	switch {
	case reflection:
		if !c.authenticated {
			return nil, status.Error(codes.Unauthenticated, "server reflection needs credentials on this node (--reflection authenticated)")
		}
		return ctx, nil
	case c.node != "":
		if nodeMethods[method] {
			return ctx, nil
		}
		return nil, status.Errorf(codes.PermissionDenied, "node %s may call %s only on behalf of a caller (%s)", c.node, method, MetadataForwardedUser)
	}
	need, ok := methodPermissions[method]
	if !ok {
		need = auth.All // a method nobody classified: only "all" may call it
	}
	allowed := c.Permissions.Has(need)
	if need == auth.Execute|auth.Query { // Request: either will do here
		allowed, need = c.Permissions&need != 0, auth.Query
	}
	if !allowed {
		return nil, c.denied(need, method)
	}
	return ctx, nil
}

// denied is the refusal of a call that needs perm: UNAUTHENTICATED for an
// anonymous caller (credentials might help), PERMISSION_DENIED naming the
// permission and the user otherwise.
func (c *caller) denied(perm auth.Permission, method string) error {
	if !c.authenticated {
		return status.Errorf(codes.Unauthenticated, "%s needs the %s permission: authenticate (authorization: Basic or Bearer)", method, perm)
	}
	return status.Errorf(codes.PermissionDenied, "user %q lacks the %s permission needed for %s", c.Name, perm, method)
}

// requestCheck returns what Request's node checks once it has classified
// the statements: execute, or query when every statement reads. Nil when
// nothing needs checking.
func requestCheck(ctx context.Context) func(readOnly bool) error {
	c := callerFrom(ctx)
	if c == nil || c.Permissions.Has(auth.Execute) {
		return nil
	}
	return func(readOnly bool) error {
		if readOnly && c.Permissions.Has(auth.Query) {
			return nil
		}
		return c.denied(auth.Execute, sqlraftv1.DatabaseService_Request_FullMethodName)
	}
}

// identify says who is calling: a node forwarding a caller's name, a node
// on its own behalf, a caller with credentials or a user certificate, or
// an anonymous caller.
func (s *Server) identify(ctx context.Context) (*caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	node, isNode := "", false
	if s.opts.NodePeer != nil {
		node, isNode = s.opts.NodePeer(ctx)
	}
	if fwd := md.Get(MetadataForwardedUser); len(fwd) > 0 {
		if !isNode {
			return nil, status.Errorf(codes.PermissionDenied, "metadata %s is accepted only from a node of the cluster", MetadataForwardedUser)
		}
		if fwd[0] == auth.Anonymous {
			return &caller{Identity: s.opts.Users.Anonymous()}, nil
		}
		id, ok := s.opts.Users.User(fwd[0])
		if !ok {
			return nil, status.Errorf(codes.Unauthenticated, "node %s forwarded a call of %q, who is not in this node's users file", node, fwd[0])
		}
		return &caller{Identity: id, authenticated: true}, nil
	}
	if isNode {
		return &caller{node: node, authenticated: true}, nil
	}
	if authz := md.Get(metadataAuthorization); len(authz) > 0 {
		return s.credentials(ctx, authz)
	}
	if cn, ok := userCertName(ctx); ok {
		id, ok := s.opts.Users.User(cn)
		if !ok || cn == auth.Anonymous {
			s.logger.DebugContext(ctx, "a verified client certificate names no user", "cn", cn, "peer", peerHost(ctx))
			return nil, status.Error(codes.Unauthenticated, "invalid credentials")
		}
		return &caller{Identity: id, authenticated: true}, nil
	}
	return &caller{Identity: s.opts.Users.Anonymous()}, nil
}

// credentials authenticates an authorization header.
func (s *Server) credentials(ctx context.Context, authz []string) (*caller, error) {
	if len(authz) > 1 {
		return nil, status.Error(codes.Unauthenticated, "more than one authorization header")
	}
	scheme, value, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
	value = strings.TrimSpace(value)
	var id auth.Identity
	var err error
	switch strings.ToLower(scheme) {
	case "basic":
		raw, derr := base64.StdEncoding.DecodeString(value)
		if derr != nil {
			return nil, status.Error(codes.Unauthenticated, "malformed authorization: Basic credentials are not base64 (of user:password)")
		}
		name, password, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "malformed authorization: Basic credentials must be base64 of user:password")
		}
		id, err = s.opts.Users.Password(ctx, peerHost(ctx), name, password)
	case "bearer":
		if value == "" {
			return nil, status.Error(codes.Unauthenticated, "malformed authorization: empty Bearer token")
		}
		id, err = s.opts.Users.Token(ctx, peerHost(ctx), value)
	default:
		return nil, status.Error(codes.Unauthenticated, "malformed authorization: want \"Basic base64(user:password)\" or \"Bearer NAME.SECRET\"")
	}
	if err != nil {
		return nil, authError(err)
	}
	return &caller{Identity: id, authenticated: true}, nil
}

// authError maps a Store failure to a status.
func authError(err error) error {
	var th *auth.ThrottledError
	switch {
	case errors.As(err, &th):
		st := status.New(codes.ResourceExhausted, th.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(th.RetryAfter)}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unauthenticated, "invalid credentials")
}

// peerHost is the caller's address without its port: the throttle's key.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}

// userCertName is the CN of the call's client certificate when the TLS
// handshake verified it (against the client CA: node certificates are
// recognized by Options.NodePeer first).
func userCertName(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", false
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		// internal/tlsconfig verifies in VerifyConnection (against the
		// client CA as it is now), which leaves VerifiedChains empty.
		cn, ok := tlsconfig.ClientPeer(ctx)
		return cn, ok && cn != ""
	}
	cn := info.State.VerifiedChains[0][0].Subject.CommonName
	return cn, cn != ""
}

// forwardIdentity adds to fctx, an outgoing call to the leader on ctx's
// caller's behalf, who that caller is: with node TLS (Options.NodePeer) the
// caller's name, never a secret; without it, the caller's own authorization
// header, which the leader authenticates again. A node's own call carries
// nothing: the leader recognizes the node.
func (s *Server) forwardIdentity(ctx, fctx context.Context) context.Context {
	if s.opts.NodePeer == nil {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get(metadataAuthorization) {
			fctx = metadata.AppendToOutgoingContext(fctx, metadataAuthorization, v)
		}
		return fctx
	}
	if c := callerFrom(ctx); c != nil && c.node == "" {
		name := c.Name
		if !c.authenticated {
			name = auth.Anonymous
		}
		fctx = metadata.AppendToOutgoingContext(fctx, MetadataForwardedUser, name)
	}
	return fctx
}

// probeIdentity is forwardIdentity for a node's own probe of another
// (Nodes asking each member's Status): with node TLS the node is
// recognized, without it the caller's authorization header goes along.
func (s *Server) probeIdentity(ctx context.Context) context.Context {
	if s.opts.NodePeer != nil {
		return ctx
	}
	return s.forwardIdentity(ctx, ctx)
}
