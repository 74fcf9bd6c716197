// Package server implements sqlraft's gRPC services, DatabaseService and
// ClusterService, on top of a raftnode.Node, plus grpc.health.v1 and server
// reflection.
//
// The server validates every request before anything is proposed (an empty
// statement list, parameter mismatches, syntax errors, refused statements
// and unknown enum values are INVALID_ARGUMENT), decides whether this node
// can serve it (writes and non-NONE reads need the leader), and otherwise
// forwards it over gRPC to the leader with the caller's deadline. Errors from
// the layers below are mapped to status codes in one place (errors.go), with
// google.rpc.ErrorInfo details where a client can act on them: NOT_LEADER
// (with the leader's ID and address), NO_LEADER, OUTCOME_UNKNOWN and
// STALE_READ. Panics in handlers become INTERNAL and are logged.
//
// With Options.Users (a users file, internal/auth), every call on the
// client port is authenticated (authorization: Basic or Bearer, a verified
// user client certificate, or the anonymous "*" user) and authorized by the
// permission its method needs (auth.go: methodPermissions); health is always
// open and reflection as Options.Reflection says. A follower authorizes a
// call before it forwards it; the leader authorizes it again, from the
// caller's name when the follower is a recognized node (Options.NodePeer),
// from the caller's own credentials otherwise.
package server
