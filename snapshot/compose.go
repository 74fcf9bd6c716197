package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
)

// This file reads a snapshot's chain (a base database and WAL files) as
// the one database file it restores to, without writing that file
// anywhere: each page is read from where its newest committed version is,
// the last WAL of the chain that holds it or else the base database.
//
// Checkpointing a WAL into a database copies the last committed frame of
// each page (up to the WAL's final database size) over the page, then cuts
// the file to that size. Restore does this once per WAL of the chain, in
// order. So the restored file has, for each page p up to the last WAL's
// database size:
//
//   - the frame of p in the newest WAL that holds one, if no WAL after
//     that one cut the database below p;
//   - otherwise the base's page p, if no WAL cut the database below p;
//   - otherwise zeros (a page past a cut that no later frame wrote: the
//     file was cut, then written past its end).
//
// The reader computes exactly that, from an index of the WALs' frames
// built by reading each WAL once (memory follows the WALs' pages, not the
// database's), and TestComposedImageIsTheRestoredFile compares it byte for
// byte with Restore's file.

// pagePatch is where the newest committed version of one page is: in which
// WAL of the chain, at which offset (of the page image, after the frame's
// header).
type pagePatch struct {
	page uint32
	wal  uint32
	off  int64
}

// imageReader reads a chain as the database file it restores to. Every
// file is read through a lease and verified against its sha256: the WALs
// entirely before the first byte is returned, the base as it is read; the
// last bytes are returned only once the whole base matched, so a corrupt
// snapshot file never reaches a reader complete (the read fails with
// ErrChecksum).
type imageReader struct {
	base      *leasedReader
	baseFile  source
	baseCheck *baseCheck
	baseLimit int64 // the base's bytes that are part of the image
	wals      []*leasedReader
	patches   []pagePatch // sorted by page
	next      int         // first patch not yet (entirely) read
	pageSize  int64
	size      int64
	pos       int64
	err       error
}

// composeImage opens chain (the base database, then WALs) through lease,
// which must cover its files, and returns its reader. It reads and checks
// every WAL before it returns; the base is read as the image is.
func composeImage(lease *Lease, fsys FS, chain []source) (_ *imageReader, err error) {
	r := &imageReader{baseFile: chain[0]}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.base, err = lease.open(fsys, chain[0].path); err != nil {
		return nil, err
	}
	r.baseCheck = startBaseCheck(r.base, chain[0])
	if err := r.readBasePageSize(); err != nil {
		return nil, err
	}
	r.size, r.baseLimit = chain[0].entry.Size, chain[0].entry.Size
	index := map[uint32]pagePatch{}
	for i, f := range chain[1:] {
		if err := r.indexWAL(lease, fsys, f, uint32(i), index); err != nil {
			return nil, err
		}
	}
	r.patches = make([]pagePatch, 0, len(index))
	for _, p := range index {
		r.patches = append(r.patches, p)
	}
	slices.SortFunc(r.patches, func(a, b pagePatch) int { return int(int64(a.page) - int64(b.page)) })
	if r.size == 0 {
		// Nothing will be read: check the base now.
		if err := r.finishBase(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// readBasePageSize reads the page size from the base's header (none if the
// base is empty: the WALs' then counts).
func (r *imageReader) readBasePageSize() error {
	if r.baseFile.entry.Size < 100 {
		return nil
	}
	var hdr [100]byte
	if _, err := r.base.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("snapshot file %s: read the database header: %w", r.baseFile.path, err)
	}
	r.pageSize = int64(binary.BigEndian.Uint16(hdr[16:]))
	if r.pageSize == 1 {
		r.pageSize = 65536
	}
	return nil
}

// indexWAL reads WAL f (number i of the chain) once, checking its size and
// sha256 while it finds its committed frames, and folds them into index as
// a checkpoint would: pages past the WAL's database size are dropped, and
// its frames replace earlier versions.
func (r *imageReader) indexWAL(lease *Lease, fsys FS, f source, i uint32, index map[uint32]pagePatch) error {
	w, err := lease.open(fsys, f.path)
	if err != nil {
		return err
	}
	r.wals = append(r.wals, w)
	hw := newHashingWriterFor(io.Discard, f.entry)
	scan, err := scanWAL(io.TeeReader(w, hw))
	if err == nil {
		_, err = io.CopyBuffer(hw, w, make([]byte, 256<<10)) // the rest, which the scan did not need
	}
	if err != nil {
		return fmt.Errorf("snapshot file %s: %w", f.path, err)
	}
	if got := hw.entry(f.entry.Name); !f.entry.sameContent(got) {
		return fmt.Errorf("snapshot file %s: %w (%d bytes, %s; want %d, %s)", f.path, ErrChecksum,
			got.Size, got.checksum(), f.entry.Size, f.entry.checksum())
	}
	if scan.empty() {
		return nil // checkpointing it changes nothing
	}
	if r.pageSize == 0 {
		r.pageSize = scan.pageSize
	}
	if scan.pageSize != r.pageSize {
		return fmt.Errorf("snapshot file %s: %w: WAL of %d-byte pages for a database of %d-byte pages", f.path,
			ErrFormat, scan.pageSize, r.pageSize)
	}
	for p := range index {
		if p > scan.dbPages {
			delete(index, p)
		}
	}
	frameSize := walFrameHeaderSize + scan.pageSize
	for p, frame := range scan.lastFrame {
		index[p] = pagePatch{page: p, wal: i, off: walHeaderSize + frame*frameSize + walFrameHeaderSize}
	}
	r.size = scan.dbBytes()
	r.baseLimit = min(r.baseLimit, r.size)
	return nil
}

// Size is the length of the image: the size of the database the chain
// restores to.
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
	err := r.fill(p[:n])
	if err == nil && r.pos+int64(n) == r.size {
		err = r.finishBase() // the last bytes go out only once the base matched
	}
	if err != nil {
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
			return fmt.Errorf("read page %d from a snapshot WAL: %w", pp.page, err)
		}
		if hi < start+r.pageSize {
			break // the rest of this page goes in the next read
		}
		r.next++
	}
	return nil
}

// readBase reads the base's next bytes into b (baseCheck hashes them
// apart).
func (r *imageReader) readBase(b []byte) error {
	_, err := io.ReadFull(r.base, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("snapshot file %s: %w (shorter than recorded)", r.baseFile.path, ErrChecksum)
	}
	return err
}

// finishBase waits for the base's sha256 check.
func (r *imageReader) finishBase() error { return r.baseCheck.wait() }

// baseCheck checks a chain's base against its sha256 in a goroutine of its
// own, reading the file at offsets, apart from the image's reads: hashing
// costs 0.6 s of CPU per GiB (as much as cp+sync takes to copy it), and done
// inline it held every byte of a backup back by that much; beside the
// sending, it mostly overlaps it. The image's last bytes still wait for it.
type baseCheck struct {
	stop atomic.Bool
	done chan struct{}
	err  error
}

func startBaseCheck(f *leasedReader, src source) *baseCheck {
	c := &baseCheck{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = c.run(f, src)
	}()
	return c
}

func (c *baseCheck) run(f *leasedReader, src source) error {
	sum := src.entry.newSum()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < src.entry.Size; {
		if c.stop.Load() {
			return errors.New("snapshot image closed")
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), src.entry.Size-off)], off)
		sum.Write(buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("snapshot file %s: %w (shorter than recorded)", src.path, ErrChecksum)
		}
		if err != nil {
			return err
		}
	}
	return src.entry.verifySum(src.path, sum)
}

// wait returns the check's outcome once it is known.
func (c *baseCheck) wait() error {
	<-c.done
	return c.err
}

// cancel stops the check and waits for it to let go of the file.
func (c *baseCheck) cancel() {
	c.stop.Store(true)
	<-c.done
}

// Close closes the chain's files (the lease stays held). It is safe to
// call more than once.
func (r *imageReader) Close() error {
	if r.baseCheck != nil {
		r.baseCheck.cancel() // before the file it reads is closed
	}
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
		r.err = errors.New("snapshot image closed")
	}
	return nil
}
