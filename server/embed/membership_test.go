package embed

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
)

// refusingCluster accepts Join after a number of refusals.
type refusingCluster struct {
	sqlraftv1.UnimplementedClusterServiceServer
	mu      sync.Mutex
	refuse  int
	attempt int
	joined  []*sqlraftv1.JoinRequest
}

func (f *refusingCluster) Join(_ context.Context, req *sqlraftv1.JoinRequest) (*sqlraftv1.JoinResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempt++
	if f.attempt <= f.refuse {
		return nil, status.Error(codes.Unavailable, "no leader")
	}
	f.joined = append(f.joined, req)
	return &sqlraftv1.JoinResponse{}, nil
}

func serveCluster(t *testing.T, f sqlraftv1.ClusterServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	sqlraftv1.RegisterClusterServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func deadAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// joiner is a membership with only what join needs.
func joiner(self raftnode.Member) *membership {
	return &membership{cfg: Config{RetryInterval: 5 * time.Millisecond}, self: self,
		logger: slog.New(slog.DiscardHandler), conns: map[string]*grpc.ClientConn{},
		dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}}
}

// TestJoinRetries: join goes round the list, past a dead address and a
// member that refuses twice, until one accepts; it gives up when ctx ends,
// and refuses a list holding only this node's own address.
func TestJoinRetries(t *testing.T) {
	f := &refusingCluster{refuse: 2}
	addr := serveCluster(t, f)
	dead := deadAddr(t)
	self := raftnode.Member{ID: "n3", RaftAddress: "n3:6002", GRPCAddress: "n3:6001"}
	m := joiner(self)
	defer func() {
		for _, c := range m.conns {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.join(ctx, []string{dead, addr}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	joined := f.joined
	f.mu.Unlock()
	if len(joined) != 1 || joined[0].GetId() != "n3" || !joined[0].GetNonVoter() || joined[0].GetRaftAddress() != "n3:6002" ||
		joined[0].GetGrpcAddress() != "n3:6001" {
		t.Fatalf("joined %v", joined)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := m.join(short, []string{dead}); err == nil {
		t.Fatal("want an error when nobody accepts")
	}
	if err := m.join(ctx, []string{self.GRPCAddress}); err == nil {
		t.Fatal("want an error for a list holding only this node")
	}
}
