// Package msglimit derives every gRPC message-size limit of a node from one
// setting, --max-message-size.
//
// grpc-go gives every server and every client connection its own limits,
// with a 4 MiB receive default. A node has four kinds: the client API server,
// the connections followers forward requests on, and the Raft transport's
// server and connections (which also carry snapshot installs). Were any of
// them left at a default, a request the client API accepted could be one
// that a peer refuses to receive: a committed-but-unreplicable log entry that
// stops every write in the cluster. So every limit is computed here, from
// the same number:
//
//   - a client request (and a forwarded one) may be up to Bytes; a read's
//     rows are budgeted to Bytes too (measured by an upper bound of their
//     encoding), so any value a request could write can be read back, and a
//     response may be up to ResponseBytes, which adds room for its header;
//   - a Raft log entry may be up to EntryBytes (a request plus its envelope),
//     and the leader refuses a bigger one before proposing it;
//   - one AppendEntries message carries at most MaxAppendEntries entries,
//     chosen so that the biggest possible batch fits the Raft transport's
//     receive limit, RaftBytes.
package msglimit

import (
	"fmt"
	"math"

	"google.golang.org/grpc"
)

// Default is the default message limit: 16 MiB.
const Default = 16 << 20

// Minimum is the smallest limit accepted: snapshot chunks (256 KiB), backup
// chunks (1 MiB, sent within ResponseBytes) and Raft's own messages must
// always fit.
const Minimum = 1 << 20

// envelope is the room a Raft entry needs beyond the request it carries
// (proposer, clock, seed, limits and protobuf framing).
const envelope = 4 << 10

// raftMax is the largest message the Raft transport is configured to take:
// grpc-go's own ceiling (a length that fits in an int32).
const raftMax = math.MaxInt32

// maxBatch is the most entries one AppendEntries message carries when entries
// are small (hashicorp/raft's MaxAppendEntries).
const maxBatch = 256

// Limit is the node's message limit in bytes.
type Limit int

// New checks a configured limit; zero means Default.
func New(bytes int) (Limit, error) {
	if bytes == 0 {
		return Default, nil
	}
	if bytes < Minimum || bytes > raftMax/2 {
		return 0, fmt.Errorf("message size limit %d is out of range [%d, %d]", bytes, Minimum, raftMax/2)
	}
	return Limit(bytes), nil
}

// Bytes is the largest client request or response.
func (l Limit) Bytes() int { return int(l) }

// EntryBytes is the largest Raft log entry the leader proposes.
func (l Limit) EntryBytes() int { return int(l) + envelope }

// headroom is the room a response needs beyond its rows (header, column
// names and types).
const headroom = 64 << 10

// ResultBytes is the budget for the rows of one read's response (or of one
// QueryStream message).
func (l Limit) ResultBytes() int { return int(l) }

// ResponseBytes is the largest response: rows up to ResultBytes plus their
// header. Clients that read large results set their receive limit to it.
func (l Limit) ResponseBytes() int { return int(l) + headroom }

// RaftBytes is the largest message the Raft transport sends or receives.
func (l Limit) RaftBytes() int { return raftMax }

// MaxAppendEntries is how many entries one AppendEntries message may carry
// so that a batch of the largest entries still fits in RaftBytes.
func (l Limit) MaxAppendEntries() int {
	return max(1, min(maxBatch, (l.RaftBytes()-envelope)/l.EntryBytes()))
}

// ServerOptions are the client API server's size options.
func (l Limit) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(l.Bytes()), grpc.MaxSendMsgSize(l.ResponseBytes())}
}

// ForwardDialOptions are the size options of the connections a follower
// forwards client requests on: the same limits as the client API.
func (l Limit) ForwardDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(l.ResponseBytes()), grpc.MaxCallSendMsgSize(l.Bytes()))}
}

// RaftServerOptions are the Raft transport server's size options.
func (l Limit) RaftServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(l.RaftBytes()), grpc.MaxSendMsgSize(l.RaftBytes())}
}

// RaftDialOptions are the size options of Raft transport connections.
func (l Limit) RaftDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(l.RaftBytes()), grpc.MaxCallSendMsgSize(l.RaftBytes()))}
}

// TooLargeError is a request or entry over the limit.
type TooLargeError struct {
	What  string // "request", "log entry"
	Size  int
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s of %d bytes is larger than the limit of %d bytes (--max-message-size)", e.What, e.Size, e.Limit)
}
