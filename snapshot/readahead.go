package snapshot

import (
	"errors"
	"io"
	"sync"
)

var errReadAheadClosed = errors.New("read-ahead closed")

// readAhead reads its source on a goroutine of its own, in chunks, up to
// depth chunks ahead of its reader, so that reading (and verifying) the
// next chunk overlaps with whatever the reader does with the previous one
// (a backup: encode it and write it to the client's connection). Memory is
// depth+1 chunks, whatever the source's length. The source is read only as
// fast as the reader takes the chunks.
type readAhead struct {
	full chan []byte // chunks read, in order; closed after the last
	free chan []byte // buffers to read into
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error // why the source ended; written before full is closed

	cur []byte // what is left of the chunk being read
	buf []byte // the buffer cur is in, to give back
}

func newReadAhead(src io.Reader, chunk, depth int) *readAhead {
	ra := &readAhead{full: make(chan []byte, depth), free: make(chan []byte, depth+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range depth + 1 {
		ra.free <- make([]byte, chunk)
	}
	go ra.run(src)
	return ra
}

func (ra *readAhead) run(src io.Reader) {
	defer close(ra.done)
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			ra.err = errReadAheadClosed
			return
		}
		n, err := readChunk(src, buf)
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				ra.err = errReadAheadClosed
				return
			}
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

// readChunk fills buf from src unless src ends or fails first.
func readChunk(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read returns the source's bytes in order, then its error (io.EOF at its
// end).
func (ra *readAhead) Read(p []byte) (int, error) {
	if len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)] // never blocks: free holds every buffer
			ra.buf = nil
		}
		b, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.cur, ra.buf = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// ChunkWriter is a writer that can take a chunk without copying it: it
// calls release once it no longer needs b (which may be after WriteChunk
// returned, or never if the chunk is dropped), and only then is b reused.
type ChunkWriter interface {
	WriteChunk(b []byte, release func()) error
}

// WriteTo writes the source's bytes to w in the chunks they were read in
// (BackupChunk for a backup), without copying them first, until the source
// ends (it returns nil then) or fails, or w fails. If w is a ChunkWriter,
// it gets each chunk whole and gives the buffer back when it is done with
// it; otherwise w must not keep a chunk after its Write returns.
func (ra *readAhead) WriteTo(w io.Writer) (int64, error) {
	cw, _ := w.(ChunkWriter)
	var total int64
	for {
		if len(ra.cur) > 0 {
			var n int
			var err error
			if cw != nil {
				buf, once := ra.buf, new(sync.Once)
				ra.buf = nil // given away: release brings it back
				err = cw.WriteChunk(ra.cur, func() { once.Do(func() { ra.free <- buf[:cap(buf)] }) })
				n = len(ra.cur)
			} else {
				n, err = w.Write(ra.cur)
			}
			total += int64(n)
			ra.cur = ra.cur[n:]
			if err != nil {
				return total, err
			}
		}
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		b, ok := <-ra.full
		if !ok {
			if ra.err == io.EOF {
				return total, nil
			}
			return total, ra.err
		}
		ra.cur, ra.buf = b, b
	}
}

// Close stops reading the source and returns once the goroutine that reads
// it has, so the source can be closed. It is safe to call more than once.
func (ra *readAhead) Close() error {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
	return nil
}
