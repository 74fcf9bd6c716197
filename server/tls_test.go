package server_test

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/testlog"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/embed"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// dialTLS opens a client connection to addr with cfg.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	var creds grpc.DialOption
	if cfg == nil {
		creds = grpc.WithTransportCredentials(insecure.NewCredentials())
	} else {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	cc, err := grpc.NewClient(addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// nodeClientTLS is what a node dialing another presents: cert, the CA as
// roots, the node protocol offered.
func nodeClientTLS(ca *testpki.CA, cert *testpki.Issued) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{tlsconfig.ALPNNode, "h2"}, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS()}
	}
	return cfg
}

// A three-node cluster with node mTLS and client TLS forms, writes,
// forwards from a follower, serves linearizable reads under its read lease,
// answers health and reflection over TLS, and installs a snapshot on a new
// node (a pull from the leader's Raft port), every byte of it over TLS.
func TestTLSClusterEndToEnd(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{
		TLS: &servertest.TLSOptions{ClientCA: testpki.NewCA(t, "users"), ClientAuth: tlsconfig.ClientAuthRequire},
		Configure: func(_ int, cfg *raftnode.Config) {
			cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 20, 5, 100*time.Millisecond
		}})
	leader := c.Leader()
	follower := c.Followers()[0]
	exec(t, leader, st("CREATE TABLE t(v)"))
	for i := 0; i < 60; i++ {
		exec(t, follower, st("INSERT INTO t VALUES(?)", integer(int64(i)))) // forwarded to the leader
	}
	before := leader.Raft.Status().LeaseReads
	c.Eventually(30*time.Second, func() error { // the lease's grants travel over the Raft port's TLS
		if got := count(t, leader, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 60 {
			t.Fatalf("linearizable count %d, want 60", got)
		}
		if leader.Raft.Status().LeaseReads == before {
			return fmt.Errorf("no linearizable read was served under the read lease")
		}
		return nil
	})
	if got := count(t, follower, "t", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); got != 60 {
		t.Fatalf("forwarded linearizable count %d, want 60", got)
	}
	// Health and reflection over TLS on the client port.
	hc, err := healthpb.NewHealthClient(follower.Conn()).Check(ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over TLS: %v %v", hc, err)
	}
	rs, err := reflectpb.NewServerReflectionClient(follower.Conn()).ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := rs.Recv(); err != nil || len(resp.GetListServicesResponse().GetService()) < 3 {
		t.Fatalf("reflection over TLS: %v %v", resp, err)
	}
	rs.CloseSend()

	// A new node joins through a follower; the leader's log was truncated,
	// so it can only catch up by installing a snapshot.
	if leader.Raft.Status().FirstLogIndex <= 1 {
		c.Eventually(30*time.Second, func() error {
			exec(t, leader, st("INSERT INTO t VALUES(0)"))
			if leader.Raft.Status().FirstLogIndex <= 1 {
				return fmt.Errorf("the leader has not truncated its log yet")
			}
			return nil
		})
	}
	newcomer := startTLSNode(t, c, "node3", follower.GRPCAddr, nil)
	c.Eventually(servertest.LeaderTimeout, func() error {
		if newcomer.Raft().FSM().Restores() == 0 {
			return fmt.Errorf("no snapshot installed yet")
		}
		if a, b := newcomer.Raft().Applied(), leader.Raft.Applied(); a < b {
			return fmt.Errorf("the new node applied %d of %d", a, b)
		}
		return nil
	})
	// Plaintext health on its --health-addr.
	plain := dialTLS(t, newcomer.HealthAddr(), nil)
	c.Eventually(30*time.Second, func() error {
		hc, err := healthpb.NewHealthClient(plain).Check(ctx(t), &healthpb.HealthCheckRequest{})
		if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("plaintext health: %v %v", hc, err)
		}
		return nil
	})
	if _, err := sqlraftv1.NewDatabaseServiceClient(plain).Query(ctx(t), &sqlraftv1.QueryRequest{}); err == nil {
		t.Fatal("the health port serves the database")
	}
}

// startTLSNode starts a node outside the cluster's list with certificates
// from its CA, joining through via, with a plaintext health port.
func startTLSNode(t *testing.T, c *servertest.Cluster, id, via string, adjust func(servertest.TLSFiles)) *embed.Node {
	t.Helper()
	dir := t.TempDir()
	files := c.WriteTLSFiles(filepath.Join(dir, "tls"), id)
	if adjust != nil {
		adjust(files)
	}
	logger := servertest.Logger().With("test-node", id)
	raftLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := embed.Start(embed.Config{
		Node:          raftnode.Config{ID: id, DataDir: filepath.Join(dir, "data"), RaftListener: raftLis, Logger: logger},
		GRPCListener:  grpcLis,
		HealthAddr:    "127.0.0.1:0",
		Join:          []string{via},
		NonVoter:      true,
		RetryInterval: 200 * time.Millisecond,
		TLS:           files.Config(t, logger),
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// logger writes to w at warn level and above.
func logger(w *testlog.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
