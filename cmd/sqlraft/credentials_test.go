package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

func TestCredentialFlagErrors(t *testing.T) {
	t.Setenv(envToken, "")
	for _, tc := range []struct {
		name string
		s    security
		want string
	}{
		{"cert without key", security{certFile: "c.pem"}, "--cert and --key must be given together"},
		{"user and token", security{user: "a", token: "t.x"}, "mutually exclusive"},
		{"colon in user", security{user: "a:b"}, "cannot contain ':'"},
		{"missing ca file", security{caFile: "/nonexistent/ca.pem"}, "--ca:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.dialOptions()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("dialOptions: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCredentialHeaders(t *testing.T) {
	t.Setenv(envPassword, "s3cret:with colon")
	t.Setenv(envToken, "")
	var warn bytes.Buffer
	s := &security{user: "alice", stderr: &warn}
	got, err := s.authorization()
	if err != nil {
		t.Fatal(err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret:with colon"))
	if got != want {
		t.Fatalf("authorization = %q, want %q", got, want)
	}
	if _, err := s.dialOptions(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "without TLS") {
		t.Fatalf("no plaintext warning: %q", warn.String())
	}

	t.Setenv(envToken, "ci.abc")
	tok := &security{}
	if got, _ := tok.authorization(); got != "Bearer ci.abc" {
		t.Fatalf("token authorization = %q", got)
	}
	md, _ := headerCredentials{value: "Bearer x"}.GetRequestMetadata(context.Background())
	if md["authorization"] != "Bearer x" {
		t.Fatalf("metadata = %v", md)
	}
}

func TestPasswordNeedsTerminalOrEnv(t *testing.T) {
	t.Setenv(envToken, "")
	t.Setenv(envPassword, "") // restored after the test
	os.Unsetenv(envPassword)
	// go test's stdin is not a terminal.
	s := &security{user: "bob"}
	if _, err := s.authorization(); err == nil || !strings.Contains(err.Error(), envPassword) {
		t.Fatalf("authorization without a password source: %v", err)
	}
}
