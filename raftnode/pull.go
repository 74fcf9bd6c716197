package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/snapshot"
)

// Snapshot installs by pull (see snapshot/DESIGN.md, "Installs by pull"):
// Raft's InstallSnapshot carries a manifest, and the follower's snapshot
// store pulls the files from the leader's SnapshotPullService, served here
// on the Raft gRPC server, in PullChunkBytes messages.

// pullServer serves SnapshotPullService from the node's snapshot store.
type pullServer struct {
	sqlraftv1.UnimplementedSnapshotPullServiceServer
	store   SnapshotStore
	closing context.Context // the node is closing: end every pull
}

// Pull streams the files of an offer: their list, then their bytes. It
// ends when the follower has read everything, when the follower goes (its
// context), or when the offer ends (the leader's Raft call returned, or its
// lease was revoked for idleness), or when the node closes (Raft's shutdown
// waits for the InstallSnapshot call, which waits for the follower, which
// waits for this pull), whichever comes first, and the offer's lease is
// released as it ends.
func (s pullServer) Pull(req *sqlraftv1.PullRequest, stream sqlraftv1.SnapshotPullService_PullServer) error {
	p, err := s.store.ServePull(stream.Context(), req.GetToken(), req.GetSnapshotId())
	if err != nil {
		return pullStatus(err)
	}
	defer p.Body.Close()
	first := &sqlraftv1.PullResponse{DbSize: p.DBSize}
	for _, f := range p.Files {
		first.Files = append(first.Files, &sqlraftv1.PullFile{Name: f.Name, Size: f.Size, Sha256: f.SHA256, Crc32C: f.CRC32C})
	}
	sent := make(chan error, 1)
	go func() { sent <- sendPull(stream, first, p.Body) }()
	select {
	case err := <-sent:
		return err
	case <-p.Done:
		select {
		case err := <-sent: // finished meanwhile
			return err
		default:
		}
		// A Send blocked by a follower that stopped reading returns once
		// this handler has returned.
		return status.Errorf(codes.Aborted, "snapshot offer ended: %v", p.Err())
	case <-s.closing.Done():
		return status.Error(codes.Unavailable, "the node serving the snapshot is closing")
	}
}

// sendPull sends first, then body in messages of at most
// snapshot.PullChunkBytes, each the body's own buffer (grpc-go encodes a
// message before Send returns, and no stats handler holds on to them).
func sendPull(stream sqlraftv1.SnapshotPullService_PullServer, first *sqlraftv1.PullResponse, body io.Reader) error {
	if err := stream.Send(first); err != nil {
		return err
	}
	chunks, ok := body.(snapshot.ChunkReader)
	if !ok {
		return status.Error(codes.Internal, "snapshot pull body cannot be read in chunks")
	}
	msg := &sqlraftv1.PullResponse{}
	for {
		b, err := chunks.Next(snapshot.PullChunkBytes)
		if len(b) > 0 {
			msg.Data = b
			if serr := stream.Send(msg); serr != nil {
				return serr
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return pullStatus(err)
		}
	}
}

// pullStatus maps a snapshot store error to a gRPC status.
func pullStatus(err error) error {
	switch {
	case errors.Is(err, snapshot.ErrOfferNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, snapshot.ErrChecksum):
		return status.Error(codes.DataLoss, err.Error())
	case errors.Is(err, snapshot.ErrLeaseRevoked), errors.Is(err, snapshot.ErrLeaseReleased):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// pullPrefetch is how many data messages (of up to
// snapshot.PullChunkBytes) a pull receives ahead of the snapshot store's
// writes: receiving a message (gRPC reassembles it from its HTTP/2 frames
// and decodes it, two copies) then overlaps writing the previous ones.
const pullPrefetch = 4

// fetchSnapshot is the snapshot store's Fetcher: it opens the pull m
// offers, on a connection of its own to m.Address (with the Raft
// transport's options: keepalive finds a leader that died). The pull ends
// when ctx ends, when the node closes, or when no message has arrived for
// the lease idle timeout (the leader gives up on an idle pull after as
// long).
func (n *Node) fetchSnapshot(ctx context.Context, m snapshot.Manifest) (*snapshot.Pull, error) {
	cc, err := grpc.NewClient(m.Address, n.raftDialOptions()...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stopOnClose := context.AfterFunc(n.closing, func() { cancel(errors.New("node closing")) })
	idle := n.cfg.leaseIdleTimeout()
	watchdog := time.AfterFunc(idle, func() { cancel(fmt.Errorf("no data from %s for %v", m.Address, idle)) })
	b := &pullBody{cc: cc, cancel: cancel, stopOnClose: stopOnClose, watchdog: watchdog, idle: idle, ctx: ctx,
		msgs: make(chan pullMessage, pullPrefetch), stopped: make(chan struct{})}
	stream, err := sqlraftv1.NewSnapshotPullServiceClient(cc).Pull(ctx,
		&sqlraftv1.PullRequest{Token: m.Token, SnapshotId: m.ID})
	if err == nil {
		b.stream = stream
		var first *sqlraftv1.PullResponse
		if first, err = b.recv(); err == nil {
			go b.prefetch()
			return b.pull(first), nil
		}
	}
	b.Close()
	return nil, err
}

// pullBody reads a pull's data messages as one stream of bytes. Its
// prefetch goroutine receives them into msgs, up to pullPrefetch ahead.
type pullBody struct {
	cc          *grpc.ClientConn
	stream      grpc.ServerStreamingClient[sqlraftv1.PullResponse]
	ctx         context.Context
	cancel      context.CancelCauseFunc
	stopOnClose func() bool
	watchdog    *time.Timer
	idle        time.Duration
	msgs        chan pullMessage
	stopped     chan struct{} // closed by Close: prefetch stops
	buf         []byte
	err         error // the error prefetch ended with, once Next met it
	closeOnce   sync.Once
}

// pullMessage is a received message's data, or the error that ended the
// pull (io.EOF at its end).
type pullMessage struct {
	data []byte
	err  error
}

func (b *pullBody) pull(first *sqlraftv1.PullResponse) *snapshot.Pull {
	p := &snapshot.Pull{DBSize: first.GetDbSize(), Body: b}
	for _, f := range first.GetFiles() {
		p.Files = append(p.Files, snapshot.PullFile{Name: f.GetName(), Size: f.GetSize(),
			CRC32C: f.GetCrc32C(), SHA256: f.GetSha256()})
	}
	return p
}

// recv receives the next message, restarting the idle watchdog.
func (b *pullBody) recv() (*sqlraftv1.PullResponse, error) {
	msg, err := b.stream.Recv()
	if err != nil {
		if cause := context.Cause(b.ctx); cause != nil && err != io.EOF {
			return nil, fmt.Errorf("%w (%v)", err, cause)
		}
		return nil, err
	}
	b.watchdog.Reset(b.idle)
	return msg, nil
}

// prefetch receives the data messages into msgs until the pull ends or
// the body is closed. Each message's data is its own (gRPC decodes every
// message into new memory), so it stays valid after the next Recv.
func (b *pullBody) prefetch() {
	for {
		msg, err := b.recv()
		m := pullMessage{data: msg.GetData(), err: err}
		if err == nil && len(m.data) == 0 {
			continue
		}
		select {
		case b.msgs <- m:
		case <-b.stopped:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns the pull's data; io.EOF once the leader has sent it all.
func (b *pullBody) Read(p []byte) (int, error) {
	c, err := b.Next(len(p))
	return copy(p, c), err
}

// Next returns the pull's next bytes without copying them: at most max,
// from the message received last (snapshot.ChunkReader).
func (b *pullBody) Next(max int) ([]byte, error) {
	for len(b.buf) == 0 {
		if b.err != nil {
			return nil, b.err
		}
		select {
		case m := <-b.msgs:
			b.buf, b.err = m.data, m.err
		case <-b.stopped:
			b.err = errors.New("snapshot pull closed")
		}
	}
	n := min(max, len(b.buf))
	c := b.buf[:n]
	b.buf = b.buf[n:]
	return c, nil
}

// Close ends the pull and its connection.
func (b *pullBody) Close() error {
	b.closeOnce.Do(func() {
		close(b.stopped)
		b.watchdog.Stop()
		b.stopOnClose()
		b.cancel(errors.New("pull closed"))
		b.cc.Close()
	})
	return nil
}
