package discovery

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// fakeCluster answers Status and accepts Join after a number of refusals.
type fakeCluster struct {
	sqlraftv1.UnimplementedClusterServiceServer
	mu      sync.Mutex
	status  *sqlraftv1.StatusResponse
	refuse  int
	joined  []*sqlraftv1.JoinRequest
	attempt int
}

func (f *fakeCluster) Status(context.Context, *sqlraftv1.StatusRequest) (*sqlraftv1.StatusResponse, error) {
	return f.status, nil
}

func (f *fakeCluster) Join(_ context.Context, req *sqlraftv1.JoinRequest) (*sqlraftv1.JoinResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempt++
	if f.attempt <= f.refuse {
		return nil, status.Error(codes.Unavailable, "no leader")
	}
	f.joined = append(f.joined, req)
	return &sqlraftv1.JoinResponse{}, nil
}

func serve(t *testing.T, f *fakeCluster) string {
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

func TestGRPCProber(t *testing.T) {
	f := &fakeCluster{status: &sqlraftv1.StatusResponse{
		Header:      &sqlraftv1.ResponseHeader{NodeId: "n1", LeaderId: "n0"},
		NodeId:      "n1",
		RaftAddress: "n1:6002",
		GrpcAddress: "n1:6001",
	}}
	addr := serve(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var g GRPCProber
	p, err := g.Probe(ctx, addr)
	want := Peer{ID: "n1", RaftAddr: "n1:6002", GRPCAddr: "n1:6001", Member: true}
	if err != nil || p != want {
		t.Fatalf("probe = %+v, %v; want %+v", p, err, want)
	}

	f.status = &sqlraftv1.StatusResponse{NodeId: "n2"}
	if _, err := g.Probe(ctx, addr); err == nil {
		t.Fatal("want error for status without raft address")
	}

	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := lis.Addr().String()
	lis.Close()
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := g.Probe(short, dead); err == nil {
		t.Fatal("want error for a dead address")
	}
}

func TestGRPCJoinRetries(t *testing.T) {
	f := &fakeCluster{refuse: 2}
	addr := serve(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	self := Peer{ID: "n3", RaftAddr: "n3:6002", GRPCAddr: "n3:6001"}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := lis.Addr().String()
	lis.Close()
	if err := (GRPCProber{}).Join(ctx, []string{dead, addr}, self, true, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.joined) != 1 || f.joined[0].GetId() != "n3" || !f.joined[0].GetNonVoter() || f.joined[0].GetRaftAddress() != "n3:6002" {
		t.Fatalf("joined %v", f.joined)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := (GRPCProber{}).Join(short, []string{dead}, self, false, time.Millisecond); err == nil {
		t.Fatal("want error when nobody accepts")
	}
	if err := (GRPCProber{}).Join(ctx, nil, self, false, 0); err == nil {
		t.Fatal("want error for an empty list")
	}
}
