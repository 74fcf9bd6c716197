package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// fakeMachine is a host named name whose name resolves to ips (or fails
// with err).
func fakeMachine(name string, err error, ips ...string) machine {
	return machine{
		hostname: func() (string, error) { return name, nil },
		lookupIP: func(_ context.Context, host string) ([]net.IP, error) {
			if host != name {
				return nil, errors.New("unexpected lookup of " + host)
			}
			if err != nil {
				return nil, err
			}
			var out []net.IP
			for _, s := range ips {
				out = append(out, net.ParseIP(s))
			}
			return out, nil
		},
	}
}

func TestAdvertiseAddr(t *testing.T) {
	routable := fakeMachine("db-1", nil, "10.0.0.7")
	cases := []struct {
		name              string
		m                 machine
		listen, advertise string
		want              string // "" when an error is expected
		errHas            []string
	}{
		{"advertise given", routable, "0.0.0.0:6001", "db-1.example:6001", "db-1.example:6001", nil},
		{"listen names a host", routable, "localhost:6001", "", "localhost:6001", nil},
		{"listen names an IP", routable, "10.0.0.7:6001", "", "10.0.0.7:6001", nil},
		{"IPv4 wildcard takes the hostname", routable, "0.0.0.0:6001", "", "db-1:6001", nil},
		{"empty host takes the hostname", routable, ":6001", "", "db-1:6001", nil},
		{"IPv6 wildcard takes the hostname", routable, "[::]:6001", "", "db-1:6001", nil},
		{"hostname on loopback", fakeMachine("laptop", nil, "127.0.1.1"), "0.0.0.0:6001", "", "",
			[]string{"--grpc-addr 0.0.0.0:6001", "127.0.1.1", "--grpc-advertise HOST:6001"}},
		{"hostname partly on loopback", fakeMachine("laptop", nil, "10.0.0.7", "::1"), ":6001", "", "",
			[]string{"::1", "--grpc-advertise"}},
		{"hostname does not resolve", fakeMachine("ghost", errors.New("no such host"), ""), ":6001", "", "",
			[]string{`"ghost" does not resolve`, "--grpc-advertise HOST:6001"}},
		{"wildcard advertise refused", routable, "0.0.0.0:6001", "0.0.0.0:6001", "",
			[]string{"--grpc-advertise 0.0.0.0:6001 is a wildcard"}},
		{"IPv6 wildcard advertise refused", routable, "0.0.0.0:6001", "[::]:6001", "", []string{"wildcard"}},
		{"hostless advertise refused", routable, "0.0.0.0:6001", ":6001", "", []string{"wildcard"}},
		{"advertise without a port", routable, "0.0.0.0:6001", "db-1", "", []string{"--grpc-advertise"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := advertiseAddr(c.m, "grpc-addr", c.listen, c.advertise)
			if c.want != "" {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, s := range c.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
	if _, err := advertiseAddr(fakeMachine("laptop", nil, "127.0.0.1"), "raft-addr", ":6002", ""); err == nil ||
		!strings.Contains(err.Error(), "--raft-advertise HOST:6002") {
		t.Fatalf("raft: %v", err)
	}
}
