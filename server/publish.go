package server

import (
	"context"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// publishAddress makes sure the replicated node table holds this node's
// client address, so that others can forward to it and list it. A node
// added by Join is recorded then, and a leader records itself; a node that
// was bootstrapped as a member, or restarted with a new address, asks the
// leader here. Joining with an unchanged role is a no-op for the Raft
// configuration, so this only ever updates the address.
func (s *Server) publishAddress() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		self, ok := s.node.Self()
		if !ok || self.GRPCAddress == "" || s.node.NodeAddress(self.ID) == self.GRPCAddress || s.node.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := forward(s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.JoinResponse, error) {
			return sqlraftv1.NewClusterServiceClient(conn).Join(fctx, &sqlraftv1.JoinRequest{
				Id: self.ID, RaftAddress: self.RaftAddress, GrpcAddress: self.GRPCAddress, NonVoter: !self.Voter})
		})
		cancel()
		if err != nil {
			s.logger.Debug("publishing this node's client address", "err", err)
		}
	}
}
