package tlsconfig

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strings"

	pb "github.com/Jille/raft-grpc-transport/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// CheckAddress reports whether cert covers the host of addr (host:port, or
// a bare host), as x509 VerifyHostname decides.
func CheckAddress(cert *x509.Certificate, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", addr)
	}
	if err := cert.VerifyHostname(host); err != nil {
		return fmt.Errorf("the certificate of %s does not cover host %q of address %q", CertName(cert), host, addr)
	}
	return nil
}

// raftTransportPrefix starts the methods of the pinned transport's service.
const raftTransportPrefix = "/RaftTransport/"

// headered is a transport message: each carries the sender's Raft address.
type headered interface{ GetRpcHeader() *pb.RPCHeader }

// raftNamesUnary refuses a unary transport message whose header claims an
// address the peer's certificate does not cover.
func (c *Config) raftNamesUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, raftTransportPrefix) {
		if err := c.checkHeader(ctx, req, true); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

// raftNamesStream checks every message of a transport stream as it is
// received (an InstallSnapshot stream's first message carries the header,
// its data chunks none; every AppendEntriesPipeline message carries one).
func (c *Config) raftNamesStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, raftTransportPrefix) {
		return handler(srv, ss)
	}
	return handler(srv, &checkedStream{ServerStream: ss, c: c})
}

type checkedStream struct {
	grpc.ServerStream
	c      *Config
	before bool // a message was received already
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	first := !s.before
	s.before = true
	return s.c.checkHeader(s.Context(), m, first)
}

// checkHeader refuses (PERMISSION_DENIED, logged) msg when its header's
// address is not covered by the peer's certificate; a message without a
// header is refused only when one is required.
func (c *Config) checkHeader(ctx context.Context, msg any, required bool) error {
	h, ok := msg.(headered)
	var addr string
	if ok && h.GetRpcHeader() != nil {
		addr = string(h.GetRpcHeader().GetAddr())
	} else if !required {
		return nil
	}
	who := peerInfo{port: "raft"}
	if p, ok := peer.FromContext(ctx); ok {
		who.addr, _, _ = net.SplitHostPort(p.Addr.String())
	}
	leaf, _ := peerLeaf(ctx)
	if leaf == nil {
		return status.Error(codes.PermissionDenied, "raft transport: the connection presented no node certificate")
	}
	if addr == "" {
		c.refusals.refuse(who, "no address claimed", CertName(leaf), fmt.Errorf("a transport message without its sender's address"))
		return status.Error(codes.PermissionDenied, "raft transport: the message's header names no address")
	}
	if err := CheckAddress(leaf, addr); err != nil {
		c.refusals.refuse(who, "name mismatch", CertName(leaf), err)
		return status.Errorf(codes.PermissionDenied, "raft transport: %v", err)
	}
	return nil
}
