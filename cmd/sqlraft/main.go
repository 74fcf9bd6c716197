// Command sqlraft is the command-line client for a sqlraft cluster: run SQL,
// inspect and change the cluster, and measure it with bench.
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sqlraft/sqlraft/internal/version"
)

// globals are the flags every subcommand shares.
type globals struct {
	addr      string
	timeout   time.Duration
	noForward bool
	output    string
	security  *security // shared by copies (bench's), so a password is asked once
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	g := &globals{security: &security{}}
	root := &cobra.Command{
		Use:          "sqlraft",
		Short:        "Command-line client for sqlraft, SQLite replicated by Raft over gRPC",
		Version:      version.Version,
		SilenceUsage: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.addr, "addr", "a", "localhost:6001", "client (gRPC) address of any node; exec and query take a comma-separated list of nodes and fail over, other commands use the first")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "deadline for each call")
	pf.BoolVar(&g.noForward, "no-forward", false, "ask followers not to forward to the leader")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	g.security.addFlags(pf)
	root.AddCommand(execCommand(g), queryCommand(g), nodesCommand(g), statusCommand(g), checksumCommand(g),
		joinCommand(g), removeCommand(g), transferCommand(g), snapshotCommand(g), backupCommand(g), dumpCommand(g), benchCommand(g), waitCommand(g))
	return root
}

// dial connects to the first node of --addr.
func (g *globals) dial() (*grpc.ClientConn, error) {
	// Responses may be as large as the server's --max-message-size allows
	// (plus a header); the server, not the CLI, is what bounds them.
	creds, err := g.security.dialOptions()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(g.firstAddr(), append(creds,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		// Flow control: with grpc-go's default (a 64 KiB window that BDP
		// estimation grows from round trips, which on a fast local link stay
		// too short to grow it much) one stream, a backup's, was paced by
		// window updates. A fixed window lets the server send that far
		// ahead of what this client has written out; large read buffers
		// take it in with fewer system calls.
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(streamWindow),
		grpc.WithReadBufferSize(transportBuffer))...)
}

// streamWindow is the CLI's HTTP/2 flow-control window, per stream and per
// connection: the most a server sends ahead of what the CLI has read.
const streamWindow = 16 << 20

// transportBuffer is the size of the CLI's reads from its connection.
const transportBuffer = 1 << 20

// callContext bounds a call and adds the no-forward metadata when asked.
func (g *globals) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, g.timeout)
	if g.noForward {
		ctx = metadata.AppendToOutgoingContext(ctx, "sqlraft-no-forward", "true")
	}
	return ctx, cancel
}

// call dials the first node of --addr and runs fn with a bounded call context.
func (g *globals) call(parent context.Context, fn func(context.Context, *grpc.ClientConn) error) error {
	conn, err := g.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := g.callContext(parent)
	defer cancel()
	return fn(ctx, conn)
}

func fail(format string, args ...any) error { return fmt.Errorf(format, args...) }
