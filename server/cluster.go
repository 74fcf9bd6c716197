package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/version"
)

// cluster implements sqlraftv1.ClusterServiceServer.
type cluster struct {
	sqlraftv1.UnimplementedClusterServiceServer
	s *Server

	statusGate, checksumGate pollGate // see pollgate.go
}

// Join implements ClusterService.Join.
func (c *cluster) Join(ctx context.Context, req *sqlraftv1.JoinRequest) (*sqlraftv1.JoinResponse, error) {
	if req.GetId() == "" || req.GetRaftAddress() == "" {
		return nil, invalid("id and raft_address are required")
	}
	if err := c.s.checkJoinNames(ctx, req); err != nil { // joincheck.go
		return nil, err
	}
	if !c.s.node.IsLeader() {
		return forward(c.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.JoinResponse, error) {
			return sqlraftv1.NewClusterServiceClient(conn).Join(fctx, req)
		})
	}
	if err := c.s.node.Join(ctx, req.GetId(), req.GetRaftAddress(), req.GetGrpcAddress(), !req.GetNonVoter()); err != nil {
		return nil, c.s.toStatus(err)
	}
	return &sqlraftv1.JoinResponse{Header: c.s.header(c.s.node.Applied())}, nil
}

// Remove implements ClusterService.Remove.
func (c *cluster) Remove(ctx context.Context, req *sqlraftv1.RemoveRequest) (*sqlraftv1.RemoveResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id is required")
	}
	if !c.s.node.IsLeader() {
		return forward(c.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.RemoveResponse, error) {
			return sqlraftv1.NewClusterServiceClient(conn).Remove(fctx, req)
		})
	}
	if err := c.s.node.Remove(ctx, req.GetId()); err != nil {
		return nil, c.s.toStatus(err)
	}
	return &sqlraftv1.RemoveResponse{Header: c.s.header(c.s.node.Applied())}, nil
}

// TransferLeadership implements ClusterService.TransferLeadership.
func (c *cluster) TransferLeadership(ctx context.Context, req *sqlraftv1.TransferLeadershipRequest) (*sqlraftv1.TransferLeadershipResponse, error) {
	if !c.s.node.IsLeader() {
		return forward(c.s, ctx, func(fctx context.Context, conn *grpc.ClientConn) (*sqlraftv1.TransferLeadershipResponse, error) {
			return sqlraftv1.NewClusterServiceClient(conn).TransferLeadership(fctx, req)
		})
	}
	if err := c.s.node.TransferLeadership(ctx, req.GetId()); err != nil {
		return nil, c.s.toStatus(err)
	}
	return &sqlraftv1.TransferLeadershipResponse{Header: c.s.header(c.s.node.Applied())}, nil
}

// Nodes implements ClusterService.Nodes. Each member is asked for its
// status (in parallel, bounded by a short timeout) to fill reachable,
// last_contact and applied_index.
func (c *cluster) Nodes(ctx context.Context, _ *sqlraftv1.NodesRequest) (*sqlraftv1.NodesResponse, error) {
	members, err := c.s.node.Members()
	if err != nil {
		return nil, c.s.toStatus(err)
	}
	out := make([]*sqlraftv1.Node, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = &sqlraftv1.Node{Id: m.ID, RaftAddress: m.RaftAddress, GrpcAddress: m.GRPCAddress, Voter: m.Voter, Leader: m.Leader}
		wg.Add(1)
		go func(n *sqlraftv1.Node) {
			defer wg.Done()
			c.probe(ctx, n)
		}(out[i])
	}
	wg.Wait()
	return &sqlraftv1.NodesResponse{Header: c.s.header(c.s.node.Applied()), Nodes: out}, nil
}

// probe fills a member's reachability from its own Status.
func (c *cluster) probe(ctx context.Context, n *sqlraftv1.Node) {
	if n.GetId() == c.s.node.ID() {
		st := c.s.node.Status()
		n.Reachable, n.AppliedIndex, n.LastContact = true, st.AppliedIndex, durationpb.New(st.LastContact)
		return
	}
	if n.GetGrpcAddress() == "" {
		return
	}
	conn, err := c.s.fwd.conn(n.GetGrpcAddress())
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(c.s.probeIdentity(ctx), 2*time.Second)
	defer cancel()
	st, err := sqlraftv1.NewClusterServiceClient(conn).Status(pctx, &sqlraftv1.StatusRequest{})
	if err != nil {
		return
	}
	n.Reachable, n.AppliedIndex, n.LastContact = true, st.GetAppliedIndex(), st.GetLastContact()
}

// Status implements ClusterService.Status. It reads memory only
// (raftnode.Node.Status) and is admitted at PollCallsPerSecond.
func (c *cluster) Status(ctx context.Context, _ *sqlraftv1.StatusRequest) (*sqlraftv1.StatusResponse, error) {
	if err := c.statusGate.wait(ctx); err != nil {
		return nil, err
	}
	st := c.s.node.Status()
	return &sqlraftv1.StatusResponse{
		Header: c.s.header(st.AppliedIndex), NodeId: st.ID, State: st.State, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastLogIndex: st.LastLogIndex,
		FirstLogIndex: st.FirstLogIndex, RaftAddress: st.RaftAddress, GrpcAddress: st.GRPCAddress,
		LastContact: durationpb.New(st.LastContact), DbSizeBytes: st.DBSize,
		Snapshot: snapshotStatusProto(c.s.node.SnapshotStats()), Version: version.Version,
		LinearizableReads: st.LinearizableReads, ReadIndexRounds: st.ReadIndexRounds,
		LeaseReads: st.LeaseReads, LeaseRenewals: st.LeaseRenewals,
		AppliedEntries: st.AppliedEntries, ApplyTransactions: st.ApplyTransactions,
	}, nil
}

// Checksum implements ClusterService.Checksum. The node caches checksums
// (raftnode.ChecksumCache): applied_index is the index the sum reflects,
// which may be a little behind the node's while writes go on. Calls are
// admitted at PollCallsPerSecond.
func (c *cluster) Checksum(ctx context.Context, _ *sqlraftv1.ChecksumRequest) (*sqlraftv1.ChecksumResponse, error) {
	if err := c.checksumGate.wait(ctx); err != nil {
		return nil, err
	}
	sum, err := c.s.node.Checksum(ctx)
	if err != nil {
		return nil, c.s.toStatus(err)
	}
	return &sqlraftv1.ChecksumResponse{Header: c.s.header(sum.Index), AppliedIndex: sum.Index, Sha256: sum.SHA256}, nil
}

// Snapshot implements ClusterService.Snapshot.
func (c *cluster) Snapshot(_ context.Context, _ *sqlraftv1.SnapshotRequest) (*sqlraftv1.SnapshotResponse, error) {
	meta, err := c.s.node.Snapshot()
	if err != nil {
		return nil, c.s.toStatus(err)
	}
	return &sqlraftv1.SnapshotResponse{Header: c.s.header(c.s.node.Applied()), Id: meta.ID,
		Kind: snapshotKindProto(meta.Kind), SizeBytes: meta.Size, Index: meta.Index}, nil
}
