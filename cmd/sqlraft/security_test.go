package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// cheapArgon2 keeps the test's hashing fast; the node verifies whatever
// parameters a hash names.
var cheapArgon2 = auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

// TestCLIWithTLSAndUsers runs the CLI against a cluster with client TLS,
// node mTLS and a users file, as an operator would: the CA from a file, a
// password from $SQLRAFT_PASSWORD, a token, and the errors a wrong password,
// a missing permission and a plaintext dial give.
func TestCLIWithTLSAndUsers(t *testing.T) {
	dir := t.TempDir()
	adminHash, err := auth.HashPasswordWith([]byte("admin-pw"), cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	readerHash, err := auth.HashPasswordWith([]byte("reader-pw"), cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	token, tokenHash, err := auth.NewToken("ci")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.yaml")
	writeFile(t, users, "users:\n"+
		"  - {name: admin, password_hash: \""+adminHash+"\", permissions: [all]}\n"+
		"  - {name: reader, password_hash: \""+readerHash+"\", permissions: [query, status]}\n"+
		"tokens:\n  - {name: ci, token_hash: \""+tokenHash+"\", permissions: [execute, query]}\n")
	c := servertest.New(t, 3, servertest.Options{
		TLS: &servertest.TLSOptions{},
		Server: func(i int, o *server.Options) {
			store, err := auth.Open(users, auth.Options{Logger: servertest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			o.Users = store
		}})
	ca := filepath.Join(dir, "ca.crt")
	writeFile(t, ca, string(c.CA().CertPEM))
	f := c.Followers()[0].GRPCAddr
	tlsArgs := []string{"--ca", ca}

	t.Setenv(envPassword, "admin-pw")
	t.Setenv(envToken, "")
	steps := []struct {
		args    []string
		want    string // in the output, or in the error when fail
		fail    bool
		retries bool // a write: retried as a user would if an election intervenes
	}{
		{args: []string{"--user", "admin", "exec", "CREATE TABLE t(v)"}, want: "0 row(s) affected", retries: true},
		{args: []string{"--user", "admin", "query", "SELECT count(*) FROM t"}, want: "0"},
		{args: []string{"--token", token, "exec", "INSERT INTO t VALUES(1)"}, want: "1 row(s) affected", retries: true},
		{args: []string{"--token", token, "nodes"}, want: "PermissionDenied", fail: true},
	}
	for _, s := range steps {
		out, err := run(t, f, append(tlsArgs, s.args...)...)
		if s.retries && err != nil {
			out, err = run(t, f, append(tlsArgs, s.args...)...)
		}
		got := out
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != s.fail || !strings.Contains(got, s.want) {
			t.Fatalf("%v: err %v, want failure %v containing %q; output:\n%s", s.args, err, s.fail, s.want, out)
		}
	}
	// --tls without --ca: the system roots do not know the test CA.
	if _, err := run(t, f, "--user", "admin", "--tls", "--timeout", "5s", "nodes"); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("--tls with the system roots: %v", err)
	}
	t.Setenv(envPassword, "wrong")
	if _, err := run(t, f, append(tlsArgs, "--user", "admin", "status")...); err == nil ||
		!strings.Contains(err.Error(), "Unauthenticated") || !strings.Contains(err.Error(), "invalid credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Setenv(envPassword, "reader-pw")
	if _, err := run(t, f, append(tlsArgs, "--user", "reader", "exec", "INSERT INTO t VALUES(2)")...); err == nil ||
		!strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("reader writing: %v", err)
	}
	if _, err := run(t, f, "--user", "reader", "--timeout", "5s", "status"); err == nil {
		t.Fatal("a plaintext dial of a TLS port succeeded")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
