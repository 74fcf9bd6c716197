package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/eventually"
)

// runCommand runs sqlraftd with args and stdin, returning its stdout.
func runCommand(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

// TestHashPasswordAndNewTokenRoundTrip: what hash-password and new-token
// print, put in a users file, lets a running node's clients in, and only
// them.
func TestHashPasswordAndNewTokenRoundTrip(t *testing.T) {
	pwHash, err := runCommand(t, "correct horse battery\n", "hash-password")
	if err != nil || !strings.HasPrefix(pwHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash-password: %q, %v", pwHash, err)
	}
	if strings.Contains(pwHash, "correct horse") {
		t.Fatal("the password is in the output")
	}
	if _, err := runCommand(t, "\n", "hash-password"); err == nil || !strings.Contains(err.Error(), "empty password") {
		t.Fatalf("empty password: %v", err)
	}
	out, err := runCommand(t, "", "new-token", "ci")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "ci.") {
		t.Fatalf("new-token: %q, %v", out, err)
	}
	token, tokenHash := lines[0], lines[1]
	if _, err := runCommand(t, "", "new-token", "bad.name"); err == nil {
		t.Fatal("new-token accepted a name with a dot")
	}

	users := filepath.Join(t.TempDir(), "users.yaml")
	body := fmt.Sprintf("users:\n  - name: admin\n    password_hash: %q\n    permissions: [all]\n"+
		"tokens:\n  - name: ci\n    token_hash: %q\n    permissions: [status]\n", strings.TrimSpace(pwHash), tokenHash)
	if err := os.WriteFile(users, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := singleNode(t, filepath.Join(t.TempDir(), "data"), "n1", true)
	cfg.usersFile, cfg.reflection = users, "on"
	stop := startNodes(t, []config{cfg})
	defer stop()
	cc, err := grpc.NewClient(cfg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	statusWith := func(authz string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if authz != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
		}
		_, err := sqlraftv1.NewClusterServiceClient(cc).Status(ctx, &sqlraftv1.StatusRequest{})
		return err
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	eventually.Within(t, 30*time.Second, func() error { return statusWith(basic("admin", "correct horse battery")) })
	if err := statusWith("Bearer " + token); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	for _, authz := range []string{"", basic("admin", "correct horse"), "Bearer " + token + "x"} {
		if err := statusWith(authz); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%q: got %v, want UNAUTHENTICATED", authz, err)
		}
	}
}

// TestBadUsersFileStopsStart: a users file that does not parse is an
// error at start, naming the file.
func TestBadUsersFileStopsStart(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(users, []byte("users:\n  - name: a\n    password_hash: plaintext\n"), 0o600)
	cfg := singleNode(t, filepath.Join(t.TempDir(), "data"), "n1", true)
	cfg.usersFile = users
	if err := run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), users) {
		t.Fatalf("got %v, want an error naming %s", err, users)
	}
	cfg.usersFile, cfg.reflection = "", "sometimes"
	if _, err := cfg.embedConfig(); err == nil || !strings.Contains(err.Error(), "--reflection") {
		t.Fatalf("bad --reflection: %v", err)
	}
}
