package discovery

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcpeer "google.golang.org/grpc/peer"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// GRPCProber identifies a candidate with ClusterService.Status.
type GRPCProber struct {
	// DialOptions are used for every connection (default: insecure
	// transport credentials).
	DialOptions []grpc.DialOption
	// CheckAnswer, when set, vets an answer against the connection it came
	// on (p: the server's address and credentials): with node TLS, that
	// the server's certificate covers the addresses the answer claims,
	// since a probe dials an IP no certificate names.
	CheckAnswer func(p *grpcpeer.Peer, answer Peer) error
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
	var p grpcpeer.Peer
	st, err := sqlraftv1.NewClusterServiceClient(cc).Status(ctx, &sqlraftv1.StatusRequest{}, grpc.WaitForReady(true), grpc.Peer(&p))
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
	answer := Peer{
		ID:       id,
		RaftAddr: st.GetRaftAddress(),
		GRPCAddr: st.GetGrpcAddress(),
		Member:   st.GetHeader().GetLeaderId() != "" || st.GetLastLogIndex() > 0,
	}
	if g.CheckAnswer != nil {
		if err := g.CheckAnswer(&p, answer); err != nil {
			return Peer{}, fmt.Errorf("discovery: probe %s: %w", addr, err)
		}
	}
	return answer, nil
}
