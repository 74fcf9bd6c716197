package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Join asks each address in turn, round after round, to add self to the
// cluster (ClusterService.Join, which followers forward to the leader) until
// one succeeds or ctx ends. interval is the pause between rounds (default 1s).
func (g GRPCProber) Join(ctx context.Context, addrs []string, self Peer, nonVoter bool, interval time.Duration) error {
	if len(addrs) == 0 {
		return fmt.Errorf("%w: no address to join", ErrConfig)
	}
	if interval <= 0 {
		interval = time.Second
	}
	req := &sqlraftv1.JoinRequest{Id: self.ID, RaftAddress: self.RaftAddr, GrpcAddress: self.GRPCAddr, NonVoter: nonVoter}
	var last error
	for {
		for _, addr := range addrs {
			if last = g.joinOne(ctx, addr, req); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

func (g GRPCProber) joinOne(ctx context.Context, addr string, req *sqlraftv1.JoinRequest) error {
	cc, err := g.dial(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := sqlraftv1.NewClusterServiceClient(cc).Join(cctx, req); err != nil {
		return fmt.Errorf("discovery: join via %s: %w", addr, err)
	}
	return nil
}
