package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// This file reads and writes SQLite write-ahead-log files (format described
// at sqlite.org/fileformat2.html, "The Write-Ahead Log"). A WAL is a 32-byte
// header followed by frames, each a 24-byte frame header and one page
// image. Every commit appends the pages it changed, so a page rewritten by
// a thousand commits has a thousand frames, and a WAL can be many times
// larger than the database. Only the last committed frame of each page
// matters to a checkpoint: compacting a WAL keeps just those.

const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagicLE         = 0x377f0682 // checksums over little-endian words
	walMagicBE         = 0x377f0683 // checksums over big-endian words
	walVersion         = 3007000
)

// walScan is what a pass over a WAL found: the frames SQLite's recovery
// would accept (valid salts and checksums, up to the last commit frame).
type walScan struct {
	header    [walHeaderSize]byte
	pageSize  int64
	bigEndian bool
	// frames is the number of committed frames.
	frames int64
	// dbPages is the database's size in pages after the last commit.
	dbPages uint32
	// lastFrame maps each page to the index of its last committed frame;
	// pages past dbPages (a commit truncated the database) are left out.
	lastFrame map[uint32]int64
}

// empty reports whether the WAL holds no committed frame.
func (w *walScan) empty() bool { return w.frames == 0 }

// dbBytes is the size of the database once the WAL is checkpointed into it.
func (w *walScan) dbBytes() int64 { return int64(w.dbPages) * w.pageSize }

// compactBytes is the size of the WAL holding only the last committed frame
// of each page (0 if there is nothing to keep).
func (w *walScan) compactBytes() int64 {
	if len(w.lastFrame) == 0 {
		return 0
	}
	return walHeaderSize + int64(len(w.lastFrame))*(walFrameHeaderSize+w.pageSize)
}

// walChecksum continues SQLite's WAL checksum s over b (a multiple of 8
// bytes).
func walChecksum(bigEndian bool, s [2]uint32, b []byte) [2]uint32 {
	var order binary.ByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	for i := 0; i+8 <= len(b); i += 8 {
		s[0] += order.Uint32(b[i:]) + s[1]
		s[1] += order.Uint32(b[i+4:]) + s[0]
	}
	return s
}

// parseWALHeader checks a WAL header as SQLite's recovery does. ok is false
// for a header SQLite would ignore (the WAL then holds no frames).
func parseWALHeader(h []byte) (w *walScan, sum [2]uint32, ok bool) {
	w = &walScan{lastFrame: map[uint32]int64{}}
	copy(w.header[:], h)
	magic := binary.BigEndian.Uint32(h[0:])
	if magic != walMagicLE && magic != walMagicBE || binary.BigEndian.Uint32(h[4:]) != walVersion {
		return w, sum, false
	}
	w.bigEndian = magic == walMagicBE
	w.pageSize = int64(binary.BigEndian.Uint32(h[8:]))
	if w.pageSize < 512 || w.pageSize > 65536 || w.pageSize&(w.pageSize-1) != 0 {
		return w, sum, false
	}
	sum = walChecksum(w.bigEndian, [2]uint32{}, h[:24])
	if sum[0] != binary.BigEndian.Uint32(h[24:]) || sum[1] != binary.BigEndian.Uint32(h[28:]) {
		return w, sum, false
	}
	return w, sum, true
}

// scanWAL reads a WAL once and indexes its committed frames. A missing or
// invalid header, or a torn or stale frame, ends the valid part as it does
// for SQLite; frames after the last commit frame are not committed.
func scanWAL(r io.Reader) (*walScan, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	h := make([]byte, walHeaderSize)
	if _, err := io.ReadFull(br, h); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &walScan{lastFrame: map[uint32]int64{}}, nil
		}
		return nil, err
	}
	w, sum, ok := parseWALHeader(h)
	if !ok {
		return w, nil
	}
	frame := make([]byte, walFrameHeaderSize+w.pageSize)
	var pending []uint32 // pages of the transaction not yet committed
	for i := int64(0); ; i++ {
		if _, err := io.ReadFull(br, frame); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, err
		}
		page, commit := binary.BigEndian.Uint32(frame[0:]), binary.BigEndian.Uint32(frame[4:])
		if page == 0 || string(frame[8:16]) != string(w.header[16:24]) {
			break
		}
		sum = walChecksum(w.bigEndian, sum, frame[:8])
		sum = walChecksum(w.bigEndian, sum, frame[walFrameHeaderSize:])
		if sum[0] != binary.BigEndian.Uint32(frame[16:]) || sum[1] != binary.BigEndian.Uint32(frame[20:]) {
			break
		}
		pending = append(pending, page)
		if commit == 0 {
			continue
		}
		first := i + 1 - int64(len(pending))
		for j, p := range pending {
			w.lastFrame[p] = first + int64(j)
		}
		pending = pending[:0]
		w.frames, w.dbPages = i+1, commit
	}
	for p := range w.lastFrame {
		if p > w.dbPages {
			delete(w.lastFrame, p)
		}
	}
	return w, nil
}

// writeCompactWAL reads the WAL that produced scan again from r and writes
// to dst a WAL holding only the last committed frame of each page, in the
// order they appear, as one transaction: the last frame written is the
// commit frame with the final database size. The header (and so the salts)
// is kept; frame checksums are recomputed. Checkpointing it yields the same
// database as checkpointing the original.
func writeCompactWAL(dst io.Writer, r io.Reader, scan *walScan) error {
	if len(scan.lastFrame) == 0 {
		return nil
	}
	br := bufio.NewReaderSize(r, 1<<20)
	if _, err := io.CopyN(io.Discard, br, walHeaderSize); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	if _, err := bw.Write(scan.header[:]); err != nil {
		return err
	}
	sum := [2]uint32{binary.BigEndian.Uint32(scan.header[24:]), binary.BigEndian.Uint32(scan.header[28:])}
	frame := make([]byte, walFrameHeaderSize+scan.pageSize)
	left := len(scan.lastFrame)
	for i := int64(0); i < scan.frames && left > 0; i++ {
		if _, err := io.ReadFull(br, frame); err != nil {
			return err
		}
		page := binary.BigEndian.Uint32(frame[0:])
		if last, ok := scan.lastFrame[page]; !ok || last != i {
			continue
		}
		left--
		commit := uint32(0)
		if left == 0 {
			commit = scan.dbPages
		}
		binary.BigEndian.PutUint32(frame[4:], commit)
		sum = walChecksum(scan.bigEndian, sum, frame[:8])
		sum = walChecksum(scan.bigEndian, sum, frame[walFrameHeaderSize:])
		binary.BigEndian.PutUint32(frame[16:], sum[0])
		binary.BigEndian.PutUint32(frame[20:], sum[1])
		if _, err := bw.Write(frame); err != nil {
			return err
		}
	}
	if left != 0 {
		return errors.New("WAL changed between scan and compaction")
	}
	return bw.Flush()
}
