package server_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestUserCertificateAuthenticates: on a cluster with client TLS, node
// mutual TLS and a users file, a client certificate from the client CA
// authenticates as the user its CN names. The calls go to a follower, so
// the write is forwarded: the follower authorizes the certificate's user and
// the leader, seeing a node certificate (the real NodePeer), authorizes the
// forwarded name itself.
func TestUserCertificateAuthenticates(t *testing.T) {
	file := writeUsersFile(t, "")
	clientCA := testpki.NewCA(t, "user CA")
	c := servertest.New(t, 3, servertest.Options{
		TLS: &servertest.TLSOptions{ClientCA: clientCA, ClientAuth: tlsconfig.ClientAuthVerifyIfGiven},
		Server: func(i int, o *server.Options) {
			users, err := auth.Open(file, auth.Options{Logger: servertest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			o.Users = users
		}})
	follower := c.Followers()[0]
	client := func(cn string) sqlraftv1.DatabaseServiceClient {
		cfg := c.ClientTLS()
		cfg.Certificates = nil
		if cn != "" {
			cfg.Certificates = []tls.Certificate{clientCA.Client(cn).TLS()}
		}
		conn, err := grpc.NewClient(follower.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return sqlraftv1.NewDatabaseServiceClient(conn)
	}
	query := &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")}}
	write := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("CREATE TABLE IF NOT EXISTS c(v)")}}
	retry := func(ctx context.Context, call func(context.Context) error) error {
		return servertest.Retry(t, ctx, servertest.Idempotent, call)
	}
	writer, reader := client("only-execute"), client("only-query")
	if err := retry(ctx(t), func(ctx context.Context) error { _, err := writer.Execute(ctx, write); return err }); err != nil {
		t.Fatalf("forwarded write as only-execute by certificate: %v", err)
	}
	if err := retry(ctx(t), func(ctx context.Context) error { _, err := reader.Query(ctx, query); return err }); err != nil {
		t.Fatalf("forwarded linearizable query as only-query by certificate: %v", err)
	}
	if _, err := reader.Execute(ctx(t), write); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"only-query"`) {
		t.Fatalf("write as only-query by certificate: %v", err)
	}
	// An authorization header takes precedence over the certificate.
	if err := retry(withAuth(ctx(t), basic("only-execute", "pw-only-execute")), func(ctx context.Context) error {
		_, err := reader.Execute(ctx, write)
		return err
	}); err != nil {
		t.Fatalf("write with a header over the certificate: %v", err)
	}
	if _, err := client("ghost").Query(ctx(t), query); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("certificate of an unknown user: %v", err)
	}
	if _, err := client("").Query(ctx(t), query); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate, no credentials: %v", err)
	}
	// A certificate from the node CA, offered without the node protocol,
	// is not a user's.
	node := c.CA().Client("only-execute")
	cfg := c.ClientTLS()
	cfg.Certificates = []tls.Certificate{node.TLS()}
	conn, err := grpc.NewClient(follower.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = sqlraftv1.NewDatabaseServiceClient(conn).Execute(ctx(t), write)
	if status.Code(err) != codes.Unavailable { // the handshake refuses it: the client CA did not sign it
		t.Fatalf("a node-CA certificate as a user certificate: %v", err)
	}
}
