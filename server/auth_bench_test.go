package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/metadata"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// BenchmarkAuthenticatedQuery compares a point read on a node without a
// users file with the same read authenticated by a password and by a token
// (argon2id at the production cost: after the first call, the verification
// cache answers), and both again over TLS with node mTLS on (a connection's
// handshake is paid once; each call pays encryption):
// go test ./server -run '^$' -bench AuthenticatedQuery
func BenchmarkAuthenticatedQuery(b *testing.B) {
	pw, err := auth.HashPassword([]byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	token, tokenHash, err := auth.NewToken("ci")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "users.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("users:\n- name: u\n  password_hash: '%s'\n  permissions: [query, execute]\n"+
		"tokens:\n- name: ci\n  token_hash: '%s'\n  permissions: [query]\n", pw, tokenHash)), 0o600)
	users := func(_ int, o *server.Options) {
		if o.Users, err = auth.Open(path, auth.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	open := servertest.New(b, 1, servertest.Options{}).Leader()
	authed := servertest.New(b, 1, servertest.Options{Server: users}).Leader()
	tlsOpen := servertest.New(b, 1, servertest.Options{TLS: &servertest.TLSOptions{}}).Leader()
	tlsAuthed := servertest.New(b, 1, servertest.Options{TLS: &servertest.TLSOptions{}, Server: users}).Leader()
	for _, n := range []*servertest.Node{open, authed, tlsOpen, tlsAuthed} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", basic("u", "pw"))
		if _, err := n.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
			{Sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"}, {Sql: "INSERT INTO t VALUES(1, 'x')"}}}); err != nil {
			b.Fatal(err)
		}
	}
	req := &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "SELECT v FROM t WHERE id = ?", Params: []*sqlraftv1.Value{integer(1)}}}}
	for _, bc := range []struct {
		name  string
		n     *servertest.Node
		authz string
	}{{"open", open, ""}, {"basic", authed, basic("u", "pw")}, {"bearer", authed, "Bearer " + token},
		{"tls-open", tlsOpen, ""}, {"tls-basic", tlsAuthed, basic("u", "pw")}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			if bc.authz != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", bc.authz)
			}
			if _, err := bc.n.DB().Query(ctx, req); err != nil { // the one verification
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := bc.n.DB().Query(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
