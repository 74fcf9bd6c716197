package servertest

import (
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/embed"
)

// ExampleNode starts a one-node cluster in the process, on loopback ports,
// for runnable examples (which have no testing.T): it returns the node's
// client address and a function that stops it and removes its data. It
// panics if the node cannot start.
func ExampleNode() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "sqlraft-example-")
	if err != nil {
		panic(err)
	}
	raftLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := embed.Start(embed.Config{
		Node:          raftnode.Config{ID: "example", DataDir: dir, RaftListener: raftLis, Logger: quiet},
		GRPCListener:  grpcLis,
		InitialVoters: []raftnode.Member{{ID: "example", RaftAddress: raftLis.Addr().String(), Voter: true}},
		Logger:        quiet,
	})
	if err != nil {
		panic(err)
	}
	return grpcLis.Addr().String(), func() {
		n.Close()
		os.RemoveAll(dir)
	}
}
