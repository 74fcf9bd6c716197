package snapshot

import (
	"errors"
	"fmt"
	"io"
)

// This file reads a database as one file from where each of its pages is:
// a base database file, with the pages a WAL holds newer versions of read
// from their frames instead. A backup (livebackup.go) composes the live
// database this way, as its read transaction sees it, without writing the
// image anywhere.

// pagePatch is where the newest version of one page is: in which WAL, at
// which offset (of the page image, after the frame's header).
type pagePatch struct {
	page uint32
	wal  uint32
	off  int64
}

// imageReader reads a base database file, cut or extended (with zeros) to
// size, with patches read over it from WAL frames. Files are read through
// a lease.
type imageReader struct {
	base      *leasedReader
	baseLimit int64 // the base's bytes that are part of the image
	wals      []*leasedReader
	patches   []pagePatch // sorted by page
	next      int         // first patch not yet (entirely) read
	pageSize  int64
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

// fill reads the image's bytes at r.pos into b: the base's part, zeros past
// it, then the pages the WALs hold over them.
func (r *imageReader) fill(b []byte) error {
	end := r.pos + int64(len(b))
	fromBase := max(0, min(end, r.baseLimit)-r.pos)
	if fromBase > 0 {
		if err := r.readBase(b[:fromBase]); err != nil {
			return err
		}
	}
	clear(b[fromBase:])
	for r.next < len(r.patches) {
		pp := r.patches[r.next]
		start := int64(pp.page-1) * r.pageSize
		if start >= end {
			break
		}
		lo, hi := max(start, r.pos), min(start+r.pageSize, end)
		if _, err := r.wals[pp.wal].ReadAt(b[lo-r.pos:hi-r.pos], pp.off+lo-start); err != nil {
			return fmt.Errorf("read page %d from a WAL: %w", pp.page, err)
		}
		if hi < start+r.pageSize {
			break // the rest of this page goes in the next read
		}
		r.next++
	}
	return nil
}

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
	for i, w := range r.wals {
		if w != nil {
			w.Close()
			r.wals[i] = nil
		}
	}
	if r.err == nil {
		r.err = errors.New("image closed")
	}
	return nil
}
