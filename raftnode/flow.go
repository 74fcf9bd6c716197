package raftnode

import "google.golang.org/grpc"

// HTTP/2 flow control and buffers of the Raft port's connections: the
// transport's (Raft's own messages) and a snapshot pull's. grpc-go starts
// every stream at a 64 KiB window and grows it by estimating the
// bandwidth-delay product from ping round trips; on loopback or a LAN the
// round trip is so short that the estimate stays a few hundred KiB, so a
// pull's sender could run only that far ahead of the follower and waited
// whenever the follower was writing to its disk: the two sides took turns
// instead of working at once. Fixed windows turn the estimation off. The
// window is memory only on the receiving side, and only while its reader
// lags: the leader receives small messages (Raft's answers, a pull's
// request). Larger socket buffers cut the number of read and write system
// calls (16 times fewer than with grpc-go's 32 KiB); the write buffer is
// shared (returned to a pool between writes), so idle connections hold none.
const (
	raftStreamWindow = 4 << 20
	raftConnWindow   = 8 << 20
	raftWriteBuffer  = 512 << 10
	raftReadBuffer   = 512 << 10
)

// raftFlowServerOptions are the Raft gRPC server's flow-control options.
func raftFlowServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(raftStreamWindow), grpc.InitialConnWindowSize(raftConnWindow),
		grpc.WriteBufferSize(raftWriteBuffer), grpc.ReadBufferSize(raftReadBuffer), grpc.SharedWriteBuffer(true),
	}
}

// raftFlowDialOptions are the flow-control options of Raft connections.
func raftFlowDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(raftStreamWindow), grpc.WithInitialConnWindowSize(raftConnWindow),
		grpc.WithWriteBufferSize(raftWriteBuffer), grpc.WithReadBufferSize(raftReadBuffer),
		grpc.WithSharedWriteBuffer(true),
	}
}
