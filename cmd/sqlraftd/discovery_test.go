package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/testnet"
	"github.com/sqlraft/sqlraft/raftnode"
)

// startNodes runs sqlraftd's run() for each config in a random order and
// returns a stop function that shuts them all down.
func startNodes(t *testing.T, cfgs []config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, i := range rand.Perm(len(cfgs)) {
		cfg := cfgs[i]
		wg.Go(func() {
			if err := run(ctx, cfg); err != nil {
				t.Errorf("node %s: %v", cfg.nodeID, err)
			}
		})
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
	}
	return func() { cancel(); wg.Wait() }
}

// waitMembers polls Nodes on addr until the cluster lists want voters and a
// leader, and returns the leader's id.
func waitMembers(t *testing.T, addr string, want int) string {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := sqlraftv1.NewClusterServiceClient(cc).Nodes(ctx, &sqlraftv1.NodesRequest{})
		cancel()
		if err == nil {
			voters, leader := 0, ""
			for _, n := range resp.GetNodes() {
				if n.GetVoter() {
					voters++
				}
				if n.GetLeader() {
					leader = n.GetId()
				}
			}
			if voters == want && leader != "" {
				return leader
			}
			last = fmt.Sprint(resp.GetNodes())
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("cluster did not reach %d voters with a leader: %s", want, last)
	return ""
}

// TestBootstrapExpectStaticJoin starts three daemons with --bootstrap-expect
// 3 and the same --join list (each listing itself), in random order: one
// cluster of three voters forms. Restarted on their data directories they
// resume the same cluster without bootstrapping again.
func TestBootstrapExpectStaticJoin(t *testing.T) {
	var grpcAddrs []string
	cfgs := make([]config, 3)
	for i := range cfgs {
		grpcAddrs = append(grpcAddrs, testnet.FreeAddr(t))
		cfgs[i] = config{
			grpcAddr: grpcAddrs[i], raftAddr: testnet.FreeAddr(t), nodeID: fmt.Sprintf("node%d", i), dataDir: t.TempDir(),
			bootstrapExpect: 3, snapshotThreshold: 8192, snapshotInterval: 30 * time.Second, trailingLogs: 10240,
			leaseIdleTimeout: 30 * time.Second, readConsistency: "linearizable", maxMessageBytes: 16 << 20,
			shutdownTimeout: 5 * time.Second, logLevel: "error",
			raftHeartbeatTimeout: raftnode.DefaultHeartbeatTimeout, raftElectionTimeout: raftnode.DefaultElectionTimeout,
			raftLeaderLeaseTimeout: raftnode.DefaultLeaderLeaseTimeout,
		}
	}
	for i := range cfgs {
		cfgs[i].join = grpcAddrs
	}
	stop := startNodes(t, cfgs)
	leader := waitMembers(t, grpcAddrs[2], 3)
	t.Logf("formed; leader %s", leader)
	stop()

	stop = startNodes(t, cfgs)
	defer stop()
	leader = waitMembers(t, grpcAddrs[0], 3)
	t.Logf("resumed; leader %s", leader)
}
