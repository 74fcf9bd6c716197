package server_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func nodesByID(t *testing.T, n *servertest.Node) map[string]*sqlraftv1.Node {
	t.Helper()
	resp, err := n.Cluster().Nodes(ctx(t), &sqlraftv1.NodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*sqlraftv1.Node{}
	for _, m := range resp.GetNodes() {
		out[m.GetId()] = m
	}
	return out
}

// TestJoinIsIdempotentAndUpdates joins a (not running) non-voter through a
// follower, joins it again unchanged, then with new addresses.
func TestJoinIsIdempotentAndUpdates(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	f := c.Followers()[0]
	// Every member publishes its client address (the followers were
	// bootstrapped as members, never joined), is reachable and reports its
	// applied index. Once they have, nothing else appends to the log.
	c.Eventually(10*time.Second, func() error {
		for id, m := range nodesByID(t, f) {
			if !m.GetReachable() || m.GetAppliedIndex() == 0 || m.GetGrpcAddress() == "" {
				return errorf("%s listed as %v", id, m)
			}
		}
		return nil
	})
	join := &sqlraftv1.JoinRequest{Id: "replica", RaftAddress: "127.0.0.1:1", GrpcAddress: "127.0.0.1:2", NonVoter: true}
	if _, err := f.Cluster().Join(ctx(t), join); err != nil {
		t.Fatal(err)
	}
	before := c.Leader().Raft.Status().LastLogIndex
	if _, err := f.Cluster().Join(ctx(t), join); err != nil {
		t.Fatal(err)
	}
	if after := c.Leader().Raft.Status().LastLogIndex; after != before {
		t.Errorf("joining again unchanged appended %d entries", after-before)
	}
	m := nodesByID(t, c.Leader())["replica"]
	if m == nil || m.GetVoter() || m.GetRaftAddress() != "127.0.0.1:1" || m.GetGrpcAddress() != "127.0.0.1:2" || m.GetReachable() {
		t.Fatalf("replica listed as %v", m)
	}
	join.RaftAddress, join.GrpcAddress = "127.0.0.1:3", "127.0.0.1:4"
	if _, err := f.Cluster().Join(ctx(t), join); err != nil {
		t.Fatal(err)
	}
	c.Eventually(5*time.Second, func() error {
		m = nodesByID(t, c.Leader())["replica"]
		if m.GetRaftAddress() != "127.0.0.1:3" || m.GetGrpcAddress() != "127.0.0.1:4" {
			return errorf("replica listed as %v", m)
		}
		return nil
	})
	if _, err := f.Cluster().Remove(ctx(t), &sqlraftv1.RemoveRequest{Id: "replica"}); err != nil {
		t.Fatal(err)
	}
	if nodesByID(t, c.Leader())["replica"] != nil {
		t.Fatal("replica still listed after Remove")
	}
	_, err := f.Cluster().Remove(ctx(t), &sqlraftv1.RemoveRequest{Id: "nobody"})
	wantCode(t, err, codes.NotFound)
}

// TestHealthServices checks grpc.health.v1: "" is SERVING on every ready
// node, sqlraft.v1.Leader only on the leader, and everything goes
// NOT_SERVING when a node shuts down.
func TestHealthServices(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	leader := c.Leader()
	check := func(n *servertest.Node, service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := healthpb.NewHealthClient(n.Conn()).Check(ctx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	c.Eventually(10*time.Second, func() error {
		for _, n := range c.Nodes {
			want := healthpb.HealthCheckResponse_NOT_SERVING
			if n == leader {
				want = healthpb.HealthCheckResponse_SERVING
			}
			if got := check(n, ""); got != healthpb.HealthCheckResponse_SERVING {
				return errorf("%s: \"\" is %v", n.ID, got)
			}
			if got := check(n, server.LeaderHealthService); got != want {
				return errorf("%s: leader service is %v, want %v", n.ID, got, want)
			}
		}
		return nil
	})
	leader.Server.Shutdown()
	if got := check(leader, ""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after Shutdown \"\" is %v", got)
	}
	if got := check(leader, server.LeaderHealthService); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after Shutdown the leader service is %v", got)
	}
}
