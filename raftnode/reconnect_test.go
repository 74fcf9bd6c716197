package raftnode

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	pb "github.com/Jille/raft-grpc-transport/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func testDialOptions(closing context.Context) []grpc.DialOption {
	cfg := Config{ID: "t", DataDir: "unused", RaftAddr: "127.0.0.1:1"}
	if err := cfg.defaults(); err != nil {
		panic(err)
	}
	return raftDialOptions(closing, cfg)
}

// TestRaftConnectionsRetryEverySecond: a Raft connection to a peer that
// refuses it keeps trying at least every RaftReconnectMaxDelay (plus
// jitter), however long the peer stays away. With grpc-go's default policy
// the pauses grow by 1.6× up to 120 s: after 10 s they are already past
// 4 s, and a follower that came back after a minute waited up to half a
// minute for the leader's next attempt.
func TestRaftConnectionsRetryEverySecond(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var attempts []time.Time
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			attempts = append(attempts, time.Now())
			mu.Unlock()
			c.Close() // no HTTP/2: the attempt fails, as with a peer that is down
		}
	}()
	cc, err := grpc.NewClient(l.Addr().String(), testDialOptions(context.Background())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.Connect()
	time.Sleep(12 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) < 4 {
		t.Fatalf("%d connection attempts in 12 s", len(attempts))
	}
	var longest time.Duration
	for i := 3; i < len(attempts); i++ { // past the first, growing pauses
		longest = max(longest, attempts[i].Sub(attempts[i-1]))
	}
	t.Logf("%d attempts in 12 s; longest pause after the third: %v", len(attempts), longest)
	if limit := 2*RaftReconnectMaxDelay + time.Second; longest > limit {
		t.Fatalf("a pause of %v between two connection attempts (limit %v)", longest, limit)
	}
}

// raftStub answers every AppendEntries with success.
type raftStub struct {
	pb.UnimplementedRaftTransportServer
}

func (raftStub) AppendEntries(context.Context, *pb.AppendEntriesRequest) (*pb.AppendEntriesResponse, error) {
	return &pb.AppendEntriesResponse{Success: true}, nil
}

// TestReplicationCallWaitsForPeer: an AppendEntries carrying entries, made
// while its peer is down, waits for the peer (which comes back, on the
// same address) and succeeds, instead of failing at once and counting as
// one more failure in Raft's replication back-off. A heartbeat still fails
// at once, and closing the node ends a wait.
func TestReplicationCallWaitsForPeer(t *testing.T) {
	addr := freeAddr(t)
	closing, stop := context.WithCancel(context.Background())
	defer stop()
	cc, err := grpc.NewClient(addr, testDialOptions(closing)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pb.NewRaftTransportClient(cc)
	entries := &pb.AppendEntriesRequest{Term: 2, PrevLogEntry: 5, PrevLogTerm: 2, LeaderCommitIndex: 5,
		Entries: []*pb.Log{{Index: 6, Term: 2}}}

	_, err = client.AppendEntries(context.Background(), &pb.AppendEntriesRequest{Term: 2})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("heartbeat to a peer that is down: %v, want Unavailable at once", err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := client.AppendEntries(context.Background(), entries)
		result <- err
	}()
	select {
	case err := <-result:
		t.Fatalf("replication call to a peer that is down returned at once: %v", err)
	case <-time.After(2 * time.Second):
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterRaftTransportServer(srv, raftStub{})
	go srv.Serve(l)
	defer srv.Stop()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("replication call after the peer came back: %v", err)
		}
	case <-time.After(RaftPeerWait):
		t.Fatal("replication call still waiting after the peer came back")
	}

	// Closing the node ends a wait at once.
	srv.Stop()
	for cc.GetState().String() == "READY" {
		cc.WaitForStateChange(context.Background(), cc.GetState())
	}
	go func() {
		_, err := client.AppendEntries(context.Background(), entries)
		result <- err
	}()
	time.Sleep(200 * time.Millisecond)
	stop()
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("replication call to a peer that is down succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the node did not end the wait for a peer")
	}
}
