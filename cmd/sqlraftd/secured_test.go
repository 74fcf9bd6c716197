package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/internal/eventually"
	"github.com/sqlraft/sqlraft/internal/testnet"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/raftnode"
)

// TestSecuredClusterFromFlags starts three daemons from the flags a
// deployment uses (client TLS and node mTLS from one certificate, a users
// file, a plaintext health port, --bootstrap-expect with a --join list):
// they discover each other, form one cluster and publish their addresses
// with node certificates only, an admin reads the membership over TLS, an
// anonymous caller is refused, and the health port answers in plaintext.
//
// As on Kubernetes, where discovery probes the pod IPs a headless service's
// DNS records list while certificates name the pods' DNS names, the
// certificate names only "localhost" (what the nodes advertise) and the
// --join list gives IP addresses: a probe must accept a node certificate
// for the IP it dialed and check the addresses the answer claims instead.
func TestSecuredClusterFromFlags(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	ca := testpki.NewCA(t, "cluster CA")
	ca.Node("localhost").Write(p("tls.crt"), p("tls.key"))
	testpki.WriteFile(t, p("ca.crt"), ca.CertPEM)
	hash, err := auth.HashPasswordWith([]byte("pw"), auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	users := "users:\n  - {name: admin, password_hash: \"" + hash + "\", permissions: [all]}\n"
	if err := os.WriteFile(p("users.yaml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	var grpcAddrs []string
	cfgs := make([]config, 3)
	for i := range cfgs {
		grpcAddrs = append(grpcAddrs, testnet.FreeAddr(t))
		raftAddr := testnet.FreeAddr(t)
		cfgs[i] = config{
			grpcAddr: grpcAddrs[i], raftAddr: raftAddr, healthAddr: testnet.FreeAddr(t),
			grpcAdvertise: localhost(t, grpcAddrs[i]), raftAdvertise: localhost(t, raftAddr),
			nodeID: fmt.Sprintf("node%d", i), dataDir: t.TempDir(), bootstrapExpect: 3,
			snapshotThreshold: 8192, snapshotInterval: 30 * time.Second, trailingLogs: 10240,
			leaseIdleTimeout: 30 * time.Second, readConsistency: "linearizable", maxMessageBytes: 16 << 20,
			shutdownTimeout: 5 * time.Second, logLevel: "error", reflection: "on", usersFile: p("users.yaml"),
			raftHeartbeatTimeout: raftnode.DefaultHeartbeatTimeout, raftElectionTimeout: raftnode.DefaultElectionTimeout,
			raftLeaderLeaseTimeout: raftnode.DefaultLeaderLeaseTimeout,
			tls: tlsFlags{cert: p("tls.crt"), key: p("tls.key"), minVersion: "1.3",
				nodeCert: p("tls.crt"), nodeKey: p("tls.key"), nodeCA: p("ca.crt")},
		}
	}
	for i := range cfgs {
		cfgs[i].join = grpcAddrs
	}
	defer startNodes(t, cfgs)()

	cc, err := grpc.NewClient(localhost(t, grpcAddrs[1]), grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cluster := sqlraftv1.NewClusterServiceClient(cc)
	admin := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:pw")))
	}
	eventually.Within(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cluster.Nodes(admin(ctx), &sqlraftv1.NodesRequest{})
		if err != nil {
			return err
		}
		voters, published := 0, 0
		for _, n := range resp.GetNodes() {
			if n.GetVoter() {
				voters++
			}
			if n.GetGrpcAddress() != "" {
				published++
			}
		}
		if voters != 3 || published != 3 {
			return fmt.Errorf("%d voters, %d client addresses published: %v", voters, published, resp.GetNodes())
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cluster.Nodes(ctx, &sqlraftv1.NodesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous Nodes: %v", err)
	}
	hc, err := grpc.NewClient(cfgs[0].healthAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	eventually.Within(t, 30*time.Second, func() error {
		resp, err := healthpb.NewHealthClient(hc).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %v", resp.GetStatus())
		}
		return err
	})
}

// localhost turns 127.0.0.1:port into localhost:port.
func localhost(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("localhost", port)
}
