package snapshot

import (
	"errors"
	"io"
	"sync"
)

// asyncPipe connects a sink's Write calls to the goroutine that parses and
// stores the stream. Unlike io.Pipe it buffers up to pipeDepth chunks of
// pipeChunk bytes, so receiving the next bytes (from the network) overlaps
// with hashing and writing the previous ones, and the many small writes Raft
// makes (16-32 KiB) cost one hand-off per chunk. Memory stays bounded.
type asyncPipe struct {
	full chan []byte // filled chunks, in order
	free chan []byte // chunks to reuse
	cur  []byte      // chunk being filled (writer side)
	rd   []byte      // unread part of the chunk being read
	rbuf []byte      // the chunk rd points into, returned to free when read

	mu      sync.Mutex
	werr    error         // writer's close reason
	rdone   chan struct{} // closed when the reader stopped
	rerr    error
	closeMu sync.Once
}

const (
	pipeChunk = 1 << 20
	pipeDepth = 4
)

func newAsyncPipe() *asyncPipe {
	p := &asyncPipe{full: make(chan []byte, pipeDepth), free: make(chan []byte, pipeDepth+1), rdone: make(chan struct{})}
	return p
}

// Write buffers b, handing full chunks to the reader.
func (p *asyncPipe) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case p.cur = <-p.free:
				p.cur = p.cur[:0]
			default:
				p.cur = make([]byte, 0, pipeChunk)
			}
		}
		m := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur = p.cur[:len(p.cur)+m]
		b, n = b[m:], n+m
		if len(p.cur) == cap(p.cur) {
			if err := p.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (p *asyncPipe) flush() error {
	if len(p.cur) == 0 {
		return nil
	}
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.rdone:
		return errors.Join(errors.New("snapshot receiver stopped"), p.rerr)
	}
}

// Close flushes and signals the end of the stream (err nil) or an abort.
func (p *asyncPipe) Close(err error) error {
	ferr := error(nil)
	if err == nil {
		ferr = p.flush()
	}
	p.closeMu.Do(func() {
		p.mu.Lock()
		p.werr = err
		p.mu.Unlock()
		close(p.full)
	})
	return ferr
}

// Read returns buffered bytes; io.EOF after a clean Close.
func (p *asyncPipe) Read(b []byte) (int, error) {
	if len(p.rd) == 0 {
		if p.rbuf != nil {
			select {
			case p.free <- p.rbuf:
			default:
			}
			p.rbuf = nil
		}
		c, ok := <-p.full
		if !ok {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.werr != nil {
				return 0, p.werr
			}
			return 0, io.EOF
		}
		p.rd, p.rbuf = c, c
	}
	n := copy(b, p.rd)
	p.rd = p.rd[n:]
	return n, nil
}

// stopReading records that the reader finished (err nil) or failed, and
// unblocks the writer.
func (p *asyncPipe) stopReading(err error) {
	p.rerr = err
	close(p.rdone)
}
