package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for cn, for a server (with an IP SAN) or a
// client.
func (ca *testCA) issue(t *testing.T, cn string, server bool) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestUserCertificateAuthenticates: over real TLS, a client certificate
// verified against the client CA authenticates as the user its CN names.
// The client API is served a second time, with TLS, for a node of a test
// cluster.
func TestUserCertificateAuthenticates(t *testing.T) {
	c := servertest.New(t, 1, servertest.Options{})
	users, err := auth.Open(writeUsersFile(t, ""), auth.Options{Logger: servertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	srv := server.New(c.Leader().Raft, server.Options{Users: users, Logger: servertest.Logger()})
	gs := srv.GRPCServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{ca.issue(t, "server", true)}, ClientCAs: ca.pool, ClientAuth: tls.VerifyClientCertIfGiven})))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(func() { gs.Stop(); srv.Close() })
	client := func(cn string) sqlraftv1.DatabaseServiceClient {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.pool}
		if cn != "" {
			cfg.Certificates = []tls.Certificate{ca.issue(t, cn, false)}
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return sqlraftv1.NewDatabaseServiceClient(conn)
	}
	query := &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")}}
	write := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("CREATE TABLE c(v)")}}
	reader := client("only-query")
	if _, err := reader.Query(ctx(t), query); err != nil {
		t.Fatalf("query as only-query by certificate: %v", err)
	}
	if _, err := reader.Execute(ctx(t), write); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"only-query"`) {
		t.Fatalf("write as only-query by certificate: %v", err)
	}
	// An authorization header takes precedence over the certificate.
	if _, err := reader.Execute(withAuth(ctx(t), basic("only-execute", "pw-only-execute")), write); err != nil {
		t.Fatalf("write with a header over the certificate: %v", err)
	}
	if _, err := client("ghost").Query(ctx(t), query); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("certificate of an unknown user: %v", err)
	}
	if _, err := client("").Query(ctx(t), query); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate, no credentials: %v", err)
	}
}
