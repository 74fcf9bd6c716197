package snapshot

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/hashicorp/raft"
)

// The stream format, produced by Store.Open and consumed by Restore and by
// a Store's sink on the receiving node:
//
//	magic    8 bytes  "SQRSNAP1"
//	length   4 bytes  big-endian length of the JSON header
//	header   JSON     streamHeader: the files that follow, with sizes and checksums
//	files    the files' bytes, back to back, in header order
//
// The first file is a complete SQLite database; each following one is a WAL
// to checkpoint into it, in order.
//
// When installs go by pull (pull.go), Raft's InstallSnapshot carries a
// manifest instead: the magic "SQRPULL1", the length, and a JSON manifest
// naming where and how to pull the files, which then arrive as above, minus
// the magic and header (their list comes in the pull's first message).

const (
	streamMagic    = "SQRSNAP1"
	pullMagic      = "SQRPULL1" // a manifest: the files are pulled (pull.go)
	maxHeaderBytes = 1 << 20
	chunkSize      = 256 << 10
)

// ErrChecksum reports a snapshot file whose content does not match the
// size or checksum recorded for it.
var ErrChecksum = errors.New("snapshot checksum mismatch")

// ErrFormat reports a stream that is not a sqlraft snapshot.
var ErrFormat = errors.New("not a sqlraft snapshot stream")

// fileEntry describes one data file: its name (inside a snapshot directory,
// or its role in a stream), size and checksum (checksum.go).
type fileEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// CRC32C is the lowercase hex CRC-32C of the content: what the store
	// records for every file it writes.
	CRC32C string `json:"crc32c,omitempty"`
	// SHA256 is the lowercase hex sha256 of the content, recorded by
	// older versions instead of CRC32C; still verified.
	SHA256 string `json:"sha256,omitempty"`
}

type streamHeader struct {
	ID    string      `json:"id"`
	Index uint64      `json:"index"`
	Term  uint64      `json:"term"`
	Files []fileEntry `json:"files"`
	// DBSize is the size of the database the stream restores to, if the
	// sender knew it.
	DBSize int64 `json:"db_size,omitempty"`
}

func encodeHeader(h streamHeader) ([]byte, error) { return encodeFramed(streamMagic, h) }

// encodeFramed encodes v as JSON after magic and the JSON's length.
func encodeFramed(magic string, v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(magic)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(js)))
	b.Write(n[:])
	b.Write(js)
	return b.Bytes(), nil
}

func readHeader(r io.Reader) (streamHeader, error) {
	magic, js, err := readFramed(r)
	if err != nil {
		return streamHeader{}, err
	}
	if magic == pullMagic {
		return streamHeader{}, fmt.Errorf("%w: a pull manifest (the data is pulled from the node that sent it; "+
			"only a Store's sink can receive it)", ErrFormat)
	}
	return decodeHeader(js)
}

// readFramed reads a stream's or a manifest's magic and JSON document.
func readFramed(r io.Reader) (magic string, js []byte, err error) {
	pre := make([]byte, len(streamMagic)+4)
	if _, err := io.ReadFull(r, pre); err != nil {
		return "", nil, fmt.Errorf("read snapshot header: %w", err)
	}
	magic = string(pre[:len(streamMagic)])
	if magic != streamMagic && magic != pullMagic {
		return "", nil, ErrFormat
	}
	n := binary.BigEndian.Uint32(pre[len(streamMagic):])
	if n > maxHeaderBytes {
		return "", nil, fmt.Errorf("%w: header of %d bytes", ErrFormat, n)
	}
	js = make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return "", nil, fmt.Errorf("read snapshot header: %w", err)
	}
	return magic, js, nil
}

func decodeHeader(js []byte) (streamHeader, error) {
	var h streamHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return h, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if err := checkEntries(h.Files); err != nil {
		return h, err
	}
	return h, nil
}

// checkEntries checks the file list of a stream or a pull: the database
// first, sizes not negative, one checksum of the right length.
func checkEntries(files []fileEntry) error {
	if len(files) == 0 || files[0].Name != "db" {
		return fmt.Errorf("%w: first file must be the database", ErrFormat)
	}
	for _, f := range files {
		if f.Size < 0 || !f.wellFormedSum() {
			return fmt.Errorf("%w: bad entry %+v", ErrFormat, f)
		}
	}
	return nil
}

// ChunkReader is a reader that can hand out the bytes it holds without
// copying them: Next returns at most max bytes (fewer at a message's or a
// file's end, none only with an error; io.EOF at the end), valid until the
// next call. A snapshot stream implements it, and so does the body of a
// pull (raftnode), so that a pull's data is copied once less on each side.
type ChunkReader interface {
	Next(max int) ([]byte, error)
}

// nextChunk returns r's next chunk of at most len(buf) bytes: r's own
// bytes if it is a ChunkReader, else read into buf (as io.ReadFull).
func nextChunk(r io.Reader, buf []byte) ([]byte, error) {
	if cr, ok := r.(ChunkReader); ok {
		return cr.Next(len(buf))
	}
	n, err := io.ReadFull(r, buf)
	if n > 0 && (err == io.ErrUnexpectedEOF || err == io.EOF) {
		err = nil // the caller asks again and gets EOF
	}
	return buf[:n], err
}

// copyExact copies exactly e.Size bytes from r to w, checking their checksum
// against e if verify. Hashing a chunk runs in parallel with writing it.
func copyExact(w io.Writer, r io.Reader, e fileEntry, buf []byte, verify bool) error {
	h := e.newSum()
	if !verify {
		h = discardHash{}
	}
	todo, done := make(chan []byte), make(chan struct{})
	go func() {
		for b := range todo {
			h.Write(b)
			done <- struct{}{}
		}
	}()
	defer close(todo)
	var n int64
	for n < e.Size {
		b, err := nextChunk(r, buf[:min(int64(len(buf)), e.Size-n)])
		n += int64(len(b))
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("snapshot file %s: %w after %d of %d bytes", e.Name, io.ErrUnexpectedEOF, n, e.Size)
		}
		if err != nil {
			return err
		}
		todo <- b
		_, werr := w.Write(b)
		<-done
		if werr != nil {
			return werr
		}
	}
	if !verify {
		return nil
	}
	return e.verifySum(e.Name, h)
}

// discardHash is a hash.Hash that computes nothing.
type discardHash struct{}

// Write discards p.
func (discardHash) Write(p []byte) (int, error) { return len(p), nil }

// Sum returns b unchanged.
func (discardHash) Sum(b []byte) []byte { return b }

// Reset does nothing.
func (discardHash) Reset() {}

// Size is 0.
func (discardHash) Size() int { return 0 }

// BlockSize is 1.
func (discardHash) BlockSize() int { return 1 }

// verifiedAtSource reports whether r is (a wrapper of) a stream of this
// package's Store: such a stream already checks every file's checksum before
// releasing its last bytes, so a reader in the same process need not hash
// again.
func verifiedAtSource(r io.Reader) bool {
	for {
		switch v := r.(type) {
		case *stream:
			return true
		case raft.ReadCloserWrapper:
			r = v.WrappedReadCloser()
		default:
			return false
		}
	}
}

// hashingWriter counts and hashes what passes through it.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

// newHashingWriter hashes with the algorithm the store records for the
// files it writes (CRC-32C).
func newHashingWriter(w io.Writer) *hashingWriter { return newHashingWriterFor(w, fileEntry{}) }

// newHashingWriterFor hashes with the algorithm of e's recorded checksum,
// to verify a file against it.
func newHashingWriterFor(w io.Writer, e fileEntry) *hashingWriter {
	return &hashingWriter{w: w, h: e.newSum()}
}

// Write writes p through, hashing and counting what was written.
func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashingWriter) entry(name string) fileEntry {
	return fileEntry{Name: name, Size: hw.n}.withSum(hw.h)
}

// source is one file of an outgoing stream: where it is on disk and what it
// must contain.
type source struct {
	path  string
	entry fileEntry
}

// stream is the reader Store.Open returns. It reads each file through the
// lease and verifies it while streaming: the last chunk of a file is
// released only after the whole file matched its checksum, so a corrupt file
// never reaches the receiver complete.
type stream struct {
	lease *Lease
	fsys  FS
	hdr   []byte
	files []source

	chunk     int         // bytes read from a file at a time (chunkSize if 0)
	onRead    func(n int) // test hook (Options.OnSend), called per chunk read
	cur       io.ReadCloser
	idx       int
	remaining int64
	sum       hash.Hash
	buf       []byte
	pending   []byte
	err       error
	onClose   func()
}

// Read returns the header, then each file's bytes as fill verifies them.
func (s *stream) Read(p []byte) (int, error) {
	if len(s.hdr) > 0 {
		n := copy(p, s.hdr)
		s.hdr = s.hdr[n:]
		return n, nil
	}
	for len(s.pending) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.fill()
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Next returns the stream's next bytes without copying them: at most max,
// valid until the next call (ChunkReader).
func (s *stream) Next(max int) ([]byte, error) {
	if len(s.hdr) > 0 {
		n := min(max, len(s.hdr))
		b := s.hdr[:n]
		s.hdr = s.hdr[n:]
		return b, nil
	}
	for len(s.pending) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		s.err = s.fill()
	}
	n := min(max, len(s.pending))
	b := s.pending[:n]
	s.pending = s.pending[n:]
	return b, nil
}

// fill reads the next chunk into pending; at the end of a file it checks
// the file's checksum before handing out the chunk.
func (s *stream) fill() error {
	if s.cur == nil {
		if s.idx >= len(s.files) {
			return io.EOF
		}
		f := s.files[s.idx]
		rc, err := s.lease.Open(s.fsys, f.path)
		if err != nil {
			return err
		}
		s.cur, s.remaining, s.sum = rc, f.entry.Size, f.entry.newSum()
	}
	if s.buf == nil {
		if s.chunk <= 0 {
			s.chunk = chunkSize
		}
		s.buf = make([]byte, s.chunk)
	}
	n := int(min(int64(len(s.buf)), s.remaining))
	if _, err := io.ReadFull(s.cur, s.buf[:n]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("snapshot file %s: %w (shorter than recorded)", s.files[s.idx].path, ErrChecksum)
		}
		return err
	}
	if s.onRead != nil {
		s.onRead(n)
	}
	s.sum.Write(s.buf[:n])
	s.remaining -= int64(n)
	if s.remaining == 0 {
		if err := s.files[s.idx].entry.verifySum(s.files[s.idx].path, s.sum); err != nil {
			return err
		}
		s.cur.Close()
		s.cur = nil
		s.idx++
	}
	s.pending = s.buf[:n]
	return nil
}

// Close releases the lease (closing any open file).
func (s *stream) Close() error {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	s.lease.Release()
	if s.onClose != nil {
		s.onClose()
		s.onClose = nil
	}
	return nil
}
