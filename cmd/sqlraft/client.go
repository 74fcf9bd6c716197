package main

import (
	"context"
	"math"
	"strings"

	"google.golang.org/grpc"

	"github.com/sqlraft/sqlraft/client"
)

// addrs is --addr split at commas.
func (g *globals) addrs() []string {
	var out []string
	for _, a := range strings.Split(g.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// firstAddr is the node commands that talk to one node use.
func (g *globals) firstAddr() string {
	if a := g.addrs(); len(a) > 0 {
		return a[0]
	}
	return g.addr
}

// withClient runs fn with a client for every node of --addr (package
// client: leader discovery, retries of what is safe to retry within
// --timeout) and the CLI's security flags. With --no-forward, calls go to
// the first address only and its answer is final, so a follower's
// NOT_LEADER naming the leader is shown rather than followed.
func (g *globals) withClient(parent context.Context, fn func(context.Context, *client.Client, []client.CallOption) error) error {
	creds, err := g.security.dialOptions()
	if err != nil {
		return err
	}
	dial := append(creds, grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(streamWindow),
		grpc.WithReadBufferSize(transportBuffer))
	c, err := client.New(g.addrs(), client.WithMaxMessageSize(math.MaxInt32), client.WithDialOptions(dial...))
	if err != nil {
		return err
	}
	defer c.Close()
	var opts []client.CallOption
	if g.noForward {
		opts = append(opts, client.NoForward(), client.At(g.firstAddr()))
	}
	ctx, cancel := context.WithTimeout(parent, g.timeout)
	defer cancel()
	return fn(ctx, c, opts)
}
