package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file reads a database as one file from where each of its pages is:
// a base database file, with the pages a WAL holds newer versions of read
// from their frames instead. A backup (livebackup.go) composes the live
// database this way, as its read transaction sees it, without writing the
// image anywhere.

// pagePatch is where the newest version of one page is: the WAL frame
// that holds it (frames count from 1).
type pagePatch struct {
	page  uint32
	frame uint32
}

// imageReader reads a base database file, cut or extended (with zeros) to
// size, with patches read over it from WAL frames. Files are read through
// a lease.
type imageReader struct {
	base      *leasedReader
	baseLimit int64 // the base's bytes that are part of the image
	wal       *leasedReader
	patches   []pagePatch // sorted by page
	next      int         // first patch not yet (entirely) read
	pageSize  int64
	salt      [8]byte // every WAL frame read must carry it
	scratch   []byte  // frames read at once, before their pages are copied out
	size      int64
	pos       int64
	err       error
}

// Size is the length of the image.
func (r *imageReader) Size() int64 { return r.size }

// Read reads the image's next bytes.
func (r *imageReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-r.pos))
	if err := r.fill(p[:n]); err != nil {
		r.err = err
		return 0, err
	}
	r.pos += int64(n)
	return n, nil
}

// fill reads the image's bytes at r.pos into b: the base's part, the pages
// the WAL holds over it and past it, and zeros in between (a page past the
// base's end that no frame holds).
func (r *imageReader) fill(b []byte) error {
	end := r.pos + int64(len(b))
	fromBase := max(0, min(end, r.baseLimit)-r.pos)
	if fromBase > 0 {
		if err := r.readBase(b[:fromBase]); err != nil {
			return err
		}
	}
	filled := fromBase // b[:filled] holds the image
	for r.next < len(r.patches) {
		pp := r.patches[r.next]
		start := int64(pp.page-1) * r.pageSize
		if start >= end {
			break
		}
		if at := start - r.pos; at > filled {
			clear(b[filled:at])
		}
		if start >= r.pos && start+r.pageSize <= end {
			n := r.run(end)
			if err := r.readRun(b, r.patches[r.next:r.next+n]); err != nil {
				return err
			}
			r.next += n
			filled = max(filled, int64(r.patches[r.next-1].page)*r.pageSize-r.pos)
			continue
		}
		// A page b holds only part of.
		lo, hi := max(start, r.pos), min(start+r.pageSize, end)
		if err := r.readPart(b[lo-r.pos:hi-r.pos], pp, lo-start); err != nil {
			return err
		}
		filled = max(filled, hi-r.pos)
		if hi < start+r.pageSize {
			break // the rest of this page goes in the next read
		}
		r.next++
	}
	clear(b[filled:])
	return nil
}

// run is how many patches from r.next on hold pages that follow one another
// and lie wholly before end, in frames that follow one another in one WAL:
// they are read with one read.
func (r *imageReader) run(end int64) int {
	n := 1
	for i := r.next + 1; i < len(r.patches); i++ {
		p, q := r.patches[i-1], r.patches[i]
		if q.page != p.page+1 || q.frame != p.frame+1 || int64(q.page)*r.pageSize > end {
			break
		}
		n++
	}
	return n
}

// readRun reads the frames of run (see run) in one read, checks each
// frame's header against its patch and copies its page into b.
func (r *imageReader) readRun(b []byte, run []pagePatch) error {
	frame := walFrameHeaderSize + r.pageSize
	need := int64(len(run)) * frame
	if int64(cap(r.scratch)) < need {
		r.scratch = make([]byte, need)
	}
	s := r.scratch[:need]
	if _, err := r.wal.ReadAt(s, r.frameOffset(run[0])); err != nil {
		return fmt.Errorf("read pages %d..%d from a WAL: %w", run[0].page, run[len(run)-1].page, err)
	}
	for i, pp := range run {
		f := s[int64(i)*frame : int64(i+1)*frame]
		if err := r.checkFrame(f[:walFrameHeaderSize], pp); err != nil {
			return err
		}
		at := int64(pp.page-1)*r.pageSize - r.pos
		copy(b[at:at+r.pageSize], f[walFrameHeaderSize:])
	}
	return nil
}

// readPart reads part of pp's page, from offset at in it, into b.
func (r *imageReader) readPart(b []byte, pp pagePatch, at int64) error {
	var h [walFrameHeaderSize]byte
	if _, err := r.wal.ReadAt(h[:], r.frameOffset(pp)); err != nil {
		return fmt.Errorf("read page %d from a WAL: %w", pp.page, err)
	}
	if err := r.checkFrame(h[:], pp); err != nil {
		return err
	}
	if _, err := r.wal.ReadAt(b, r.frameOffset(pp)+walFrameHeaderSize+at); err != nil {
		return fmt.Errorf("read page %d from a WAL: %w", pp.page, err)
	}
	return nil
}

// checkFrame checks a frame's header h: it holds pp's page and carries the
// WAL's salt. The index the patches come from is SQLite's wal-index; the
// WAL's own frame headers are what it must agree with.
func (r *imageReader) checkFrame(h []byte, pp pagePatch) error {
	if page := binary.BigEndian.Uint32(h[0:]); page != pp.page || string(h[8:16]) != string(r.salt[:]) {
		return fmt.Errorf("%w: WAL frame %d holds page %d (salt %x), the index says page %d (salt %x)",
			errIndexMismatch, pp.frame, page, h[8:16], pp.page, r.salt)
	}
	return nil
}

// frameOffset is where pp's frame (its header) starts in the WAL.
func (r *imageReader) frameOffset(pp pagePatch) int64 {
	return walHeaderSize + int64(pp.frame-1)*(walFrameHeaderSize+r.pageSize)
}

// errIndexMismatch: a WAL frame is not what the wal-index said.
var errIndexMismatch = errors.New("WAL and wal-index disagree")

// readBase reads the base's next bytes into b.
func (r *imageReader) readBase(b []byte) error {
	_, err := io.ReadFull(r.base, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("database file %s: shorter than when the read began", r.base.f.Name())
	}
	return err
}

// Close closes the files (the lease stays held). It is safe to call more
// than once.
func (r *imageReader) Close() error {
	if r.base != nil {
		r.base.Close()
		r.base = nil
	}
	if r.wal != nil {
		r.wal.Close()
		r.wal = nil
	}
	if r.err == nil {
		r.err = errors.New("image closed")
	}
	return nil
}
