package client

import (
	"context"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// clusterCall runs one unary ClusterService call with the retry policy of
// kind and the routing rt.
func clusterCall[Resp interface {
	GetHeader() *sqlraftv1.ResponseHeader
}](c *Client, ctx context.Context, kind opKind, rt route,
	opts []CallOption, call func(sqlraftv1.ClusterServiceClient, context.Context) (Resp, error)) (Resp, error) {
	var resp Resp
	err := c.invoke(ctx, kind, rt, opts, func(ctx context.Context, cc *grpc.ClientConn) (*sqlraftv1.ResponseHeader, error) {
		r, err := call(sqlraftv1.NewClusterServiceClient(cc), ctx)
		if err != nil {
			return nil, err
		}
		resp = r
		return r.GetHeader(), nil
	})
	return resp, err
}

// Nodes lists the members of the cluster as the node the client uses sees
// them.
func (c *Client) Nodes(ctx context.Context, opts ...CallOption) (*sqlraftv1.NodesResponse, error) {
	return clusterCall(c, ctx, repeatable, toAny, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.NodesResponse, error) {
			return cs.Nodes(ctx, &sqlraftv1.NodesRequest{})
		})
}

// Status reports one node's Raft, database and snapshot state: the node
// the client uses, or the one named with At.
func (c *Client) Status(ctx context.Context, opts ...CallOption) (*sqlraftv1.StatusResponse, error) {
	return clusterCall(c, ctx, repeatable, toAny, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.StatusResponse, error) {
			return cs.Status(ctx, &sqlraftv1.StatusRequest{})
		})
}

// Checksum digests one node's database content at its applied index (the
// node the client uses, or the one named with At).
func (c *Client) Checksum(ctx context.Context, opts ...CallOption) (*sqlraftv1.ChecksumResponse, error) {
	return clusterCall(c, ctx, repeatable, toAny, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.ChecksumResponse, error) {
			return cs.Checksum(ctx, &sqlraftv1.ChecksumRequest{})
		})
}

// Snapshot asks one node (the node the client uses, or the one named with
// At) to take a Raft snapshot now. Taking one twice is harmless, so it is
// retried like a read.
func (c *Client) Snapshot(ctx context.Context, opts ...CallOption) (*sqlraftv1.SnapshotResponse, error) {
	return clusterCall(c, ctx, repeatable, toAny, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.SnapshotResponse, error) {
			return cs.Snapshot(ctx, &sqlraftv1.SnapshotRequest{})
		})
}

// Join adds a node (or updates its addresses) in the Raft configuration.
// A membership change is a write: it is not repeated when its outcome is
// unknown unless marked Idempotent (joining the same node again with the
// same addresses is harmless).
func (c *Client) Join(ctx context.Context, req *sqlraftv1.JoinRequest, opts ...CallOption) (*sqlraftv1.JoinResponse, error) {
	return clusterCall(c, ctx, write, toLeader, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.JoinResponse, error) {
			return cs.Join(ctx, req)
		})
}

// Remove removes the node with this ID from the Raft configuration (a
// write, as Join).
func (c *Client) Remove(ctx context.Context, id string, opts ...CallOption) (*sqlraftv1.RemoveResponse, error) {
	return clusterCall(c, ctx, write, toLeader, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.RemoveResponse, error) {
			return cs.Remove(ctx, &sqlraftv1.RemoveRequest{Id: id})
		})
}

// TransferLeadership asks the leader to hand leadership to the voter with
// this ID, or to any voter when id is "". The client learns the new
// leader from the response's header.
func (c *Client) TransferLeadership(ctx context.Context, id string, opts ...CallOption) (*sqlraftv1.TransferLeadershipResponse, error) {
	return clusterCall(c, ctx, write, toLeader, opts,
		func(cs sqlraftv1.ClusterServiceClient, ctx context.Context) (*sqlraftv1.TransferLeadershipResponse, error) {
			return cs.TransferLeadership(ctx, &sqlraftv1.TransferLeadershipRequest{Id: id})
		})
}
