package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func TestWaitAgainstCluster(t *testing.T) {
	if leaderHealthService != server.LeaderHealthService {
		t.Fatalf("leaderHealthService %q, server's %q", leaderHealthService, server.LeaderHealthService)
	}
	c := servertest.New(t, 3, servertest.Options{})
	c.WaitConverged(60 * time.Second)
	for _, n := range c.Followers() {
		if out, err := run(t, n.GRPCAddr, "--timeout", "60s", "wait"); err != nil || !strings.Contains(out, "SERVING") {
			t.Fatalf("wait on follower %s: %v\n%s", n.GRPCAddr, err, out)
		}
	}
	if out, err := run(t, c.Leader().GRPCAddr, "--timeout", "60s", "wait", "--leader"); err != nil {
		t.Fatalf("wait --leader on the leader: %v\n%s", err, out)
	}
}

// TestWaitForLateNode starts wait before anything listens; the server
// comes up NOT_SERVING, then turns SERVING, and wait returns.
func TestWaitForLateNode(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	done := make(chan error, 1)
	go func() {
		_, err := run(t, addr, "--timeout", "120s", "wait")
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // let it find nothing listening first
	if lis, err = net.Listen("tcp", addr); err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	defer gs.Stop()
	select {
	case err := <-done:
		t.Fatalf("wait returned while NOT_SERVING: %v", err)
	case <-time.After(time.Second):
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("wait did not return after SERVING")
	}
}

func TestWaitTimesOut(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	_, err = run(t, addr, "--timeout", "1s", "wait")
	if err == nil || !strings.Contains(err.Error(), "not SERVING after 1s") {
		t.Fatalf("wait on nothing: %v", err)
	}
}
