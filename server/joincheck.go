package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
)

// checkJoinNames decides, with node TLS on (Options.NodePeer set), whether
// a Join may go on: it must come from a node (a connection with a node
// certificate), and that certificate must cover the hosts of the Raft and
// client addresses the request claims, so that a node cannot enter the
// cluster under another node's address. A Join another node forwarded was
// checked by that node, where it arrived; the forwarding node's own
// certificate vouches for it here. (A NodePeer that identifies nodes by
// other means than a certificate, as some tests' do, has no names to
// check.) Refusals are PERMISSION_DENIED and logged.
func (s *Server) checkJoinNames(ctx context.Context, req *sqlraftv1.JoinRequest) error {
	if s.opts.NodePeer == nil {
		return nil
	}
	name, ok := s.opts.NodePeer(ctx)
	if !ok {
		s.logger.Warn("refused a Join: the caller has no node certificate", "id", req.GetId(), "raft_address", req.GetRaftAddress())
		return status.Error(codes.PermissionDenied, "joining requires a node certificate: with node TLS on, Join is "+
			"accepted only over a connection that presents a certificate from the node CA (--node-cert, --node-ca)")
	}
	if md, _ := metadata.FromIncomingContext(ctx); first(md, metadataForwarded) != "" {
		return nil
	}
	cert := tlsconfig.NodePeerCertificate(ctx)
	if cert == nil {
		return nil // a NodePeer that is not node TLS (tests' stand-ins): no names to check
	}
	for _, addr := range []string{req.GetRaftAddress(), req.GetGrpcAddress()} {
		if addr == "" {
			continue
		}
		if err := tlsconfig.CheckAddress(cert, addr); err != nil {
			s.logger.Warn("refused a Join: the node's certificate does not cover the address it claims", "id", req.GetId(),
				"certificate", name, "reason", "name mismatch", "err", err)
			return status.Errorf(codes.PermissionDenied, "join refused: %v", err)
		}
	}
	return nil
}
