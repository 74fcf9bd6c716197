package discovery

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// fakeCluster answers Status.
type fakeCluster struct {
	sqlraftv1.UnimplementedClusterServiceServer
	status *sqlraftv1.StatusResponse
}

func (f *fakeCluster) Status(context.Context, *sqlraftv1.StatusRequest) (*sqlraftv1.StatusResponse, error) {
	return f.status, nil
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
