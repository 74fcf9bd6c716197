package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultStreamSendTimeout is how long a QueryStream or Backup waits, by
// default, for its client to take a message (--stream-send-timeout).
const DefaultStreamSendTimeout = 30 * time.Second

// send hands msg to a server stream (QueryStream, its forwarded form, or
// Backup) and gives up once Options.StreamSendTimeout has passed.
//
// grpc-go's SendMsg blocks while the client's flow-control window is full,
// that is for as long as the client does not read, and nothing but the end
// of the call interrupts it. A QueryStream blocked there holds a SQLite
// connection and its read transaction, which keeps the WAL from being reset
// (it grows with every write) and a checkpoint from completing (the next
// snapshot must be full); a forwarded one holds a stream to the leader that
// does the same there. So SendMsg runs on a goroutine of its own, and when
// the timeout passes first send returns DEADLINE_EXCEEDED: the handler
// returns it, grpc-go ends the call, which makes the pending SendMsg return,
// and the status reaches the client after the messages it has not read yet.
// A client that keeps reading, however slowly, is never cut off; the bound
// is on each message.
func (s *Server) send(stream grpc.ServerStream, msg any) error {
	done := make(chan error, 1)
	go func() { done <- stream.SendMsg(msg) }()
	timer := time.NewTimer(s.opts.StreamSendTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return status.Errorf(codes.DeadlineExceeded, "the client took no message of this stream for %v (--stream-send-timeout); "+
			"the server ended the stream to release what it held", s.opts.StreamSendTimeout)
	}
}
