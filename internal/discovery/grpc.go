package discovery

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// GRPCProber identifies a candidate with ClusterService.Status.
type GRPCProber struct {
	// DialOptions are used for every connection (default: insecure
	// transport credentials).
	DialOptions []grpc.DialOption
}

func (g GRPCProber) dial(addr string) (*grpc.ClientConn, error) {
	opts := g.DialOptions
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return grpc.NewClient(addr, opts...)
}

// Probe calls Status on addr. A node counts as a cluster member when it
// knows a leader or has Raft log entries.
func (g GRPCProber) Probe(ctx context.Context, addr string) (Peer, error) {
	cc, err := g.dial(addr)
	if err != nil {
		return Peer{}, err
	}
	defer cc.Close()
	st, err := sqlraftv1.NewClusterServiceClient(cc).Status(ctx, &sqlraftv1.StatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return Peer{}, fmt.Errorf("discovery: probe %s: %w", addr, err)
	}
	id := st.GetNodeId()
	if id == "" {
		id = st.GetHeader().GetNodeId()
	}
	if id == "" || st.GetRaftAddress() == "" {
		return Peer{}, fmt.Errorf("discovery: probe %s: status lacks node id or raft address", addr)
	}
	return Peer{
		ID:       id,
		RaftAddr: st.GetRaftAddress(),
		GRPCAddr: st.GetGrpcAddress(),
		Member:   st.GetHeader().GetLeaderId() != "" || st.GetLastLogIndex() > 0,
	}, nil
}
