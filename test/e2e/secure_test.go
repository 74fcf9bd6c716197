//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
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
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/internal/testpki"
)

const (
	healthPort = "6003"
	secretDir  = "/etc/sqlraft/tls" // where the containers mount the test's files
)

// secured is what deploy/kubernetes mounts from its Secrets, made for one
// test: a cluster CA, one certificate naming every container and service
// name (for the client port and between nodes, as make-secrets.sh writes),
// and a users file with an admin.
type secured struct {
	dir      string
	ca       *testpki.CA
	password string
}

func newSecured(t *testing.T) *secured {
	t.Helper()
	s := &secured{dir: t.TempDir(), ca: testpki.NewCA(t, "e2e cluster CA"), password: "e2e-admin-pw"}
	p := func(n string) string { return filepath.Join(s.dir, n) }
	names := []string{peersAlias, clientAlias, "localhost"}
	for i := range 5 {
		names = append(names, host(i))
	}
	s.ca.Node(names...).Write(p("tls.crt"), p("tls.key"))
	testpki.WriteFile(t, p("ca.crt"), s.ca.CertPEM)
	hash, err := auth.HashPassword([]byte(s.password))
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, p("users.yaml"), []byte("users:\n  - name: admin\n    password_hash: \""+hash+
		"\"\n    permissions: [all]\n"))
	// The containers run as an unprivileged user: a bind mount keeps the
	// host's owner and modes.
	for _, f := range []string{"", "tls.crt", "tls.key", "ca.crt", "users.yaml"} {
		mode := os.FileMode(0o644)
		if f == "" {
			mode = 0o755
		}
		if err := os.Chmod(p(f), mode); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// flags are the daemon flags of deploy/kubernetes' StatefulSet.
func (s *secured) flags() []string {
	return []string{
		"--tls-cert", secretDir + "/tls.crt", "--tls-key", secretDir + "/tls.key",
		"--node-cert", secretDir + "/tls.crt", "--node-key", secretDir + "/tls.key", "--node-ca", secretDir + "/ca.crt",
		"--users-file", secretDir + "/users.yaml", "--health-addr", ":" + healthPort,
	}
}

func (s *secured) mounts() []string { return []string{s.dir + ":" + secretDir + ":ro"} }

// dialOptions connect to host h as the admin, verifying h's certificate.
func (s *secured) dialOptions(h string) []grpc.DialOption {
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: h, MinVersion: tls.VersionTLS13}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithPerRPCCredentials(basicAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+s.password))))}
}

type basicAuth string

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}

func (basicAuth) RequireTransportSecurity() bool { return true }

// Scenario: the security of deploy/kubernetes on containers. Three nodes
// with client TLS, node mutual TLS, a users file and a plaintext health port
// find each other through the peers alias's DNS records (IP addresses, which
// their certificates do not name), form one cluster and publish their
// addresses; an admin writes through a follower (forwarded over mutual TLS
// with the admin's name) and reads everywhere; a caller without credentials,
// a plaintext client and the probe's plaintext health port get what they
// should.
func TestSecuredCluster(t *testing.T) {
	s := newSecured(t)
	c := startCluster(t, 3, s)
	leader := c.leader(threeHosts, 30*time.Second)
	var follower string
	for _, h := range threeHosts {
		if h != leader {
			follower = h
			break
		}
	}
	execSQL(c, follower, "CREATE TABLE sec(v)", "INSERT INTO sec VALUES(1)")
	for _, h := range threeHosts {
		rows := queryRows(c, h, sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, "SELECT count(*) FROM sec")
		if len(rows) != 1 || rows[0].GetValues()[0].GetInteger() != 1 {
			t.Fatalf("%s: rows %v", h, rows)
		}
	}
	ip := c.ip(follower)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	anon, err := grpc.NewClient(net.JoinHostPort(ip, grpcPort), grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: s.ca.Pool(), ServerName: follower, MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := sqlraftv1.NewClusterServiceClient(anon).Nodes(ctx, &sqlraftv1.NodesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Nodes without credentials: %v", err)
	}
	plain, err := grpc.NewClient(net.JoinHostPort(ip, grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a plaintext client on the TLS port: %v", err)
	}
	probe, err := grpc.NewClient(net.JoinHostPort(ip, healthPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	resp, err := healthpb.NewHealthClient(probe).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("the plaintext health port: %v %v", resp, err)
	}
	resp, err = healthpb.NewHealthClient(probe).Check(ctx, &healthpb.HealthCheckRequest{Service: "sqlraft.v1.Leader"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("the plaintext health port's leader service on a follower: %v %v", resp, err)
	}
}
