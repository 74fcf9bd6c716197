//go:build robustness

package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"

	"github.com/sqlraft/sqlraft/server/embed"
)

// DialSourceEnv names the environment variable that, in binaries built with
// the robustness tag (test/robustness), makes every connection this node
// opens to another node (Raft, forwarding, join) start from the given
// loopback address. The robustness suite's proxies tell the nodes apart by
// that source address, so they can cut, delay or drop traffic between any
// pair. Production builds do not contain this file.
const DialSourceEnv = "SQLRAFT_DIAL_SOURCE_IP"

// withDialSource adds a dialer bound to $SQLRAFT_DIAL_SOURCE_IP, if set.
func withDialSource(cfg *embed.Config) error {
	src := os.Getenv(DialSourceEnv)
	if src == "" {
		return nil
	}
	ip := net.ParseIP(src)
	if ip == nil {
		return fmt.Errorf("%s: %q is not an IP address", DialSourceEnv, src)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	opt := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})
	cfg.Node.RaftDialOptions = append(cfg.Node.RaftDialOptions, opt)
	cfg.Server.ForwardDialOptions = append(cfg.Server.ForwardDialOptions, opt)
	return nil
}
