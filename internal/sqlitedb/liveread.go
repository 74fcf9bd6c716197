package sqlitedb

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
)

// A backup reads the live database's files directly, as one consistent
// image, while writes go on. What makes that safe is a read transaction
// that SQLite itself honours (sqlite.org/wal.html, walformat.html):
//
//   - while a connection reads with a read mark above zero (it uses WAL
//     frames), no checkpoint copies a frame past that mark into the
//     database file, and no writer or checkpoint restarts or truncates the
//     WAL: frames 1..mark stay where they are;
//   - while a connection reads with read mark zero (the WAL was entirely
//     copied into the database file when it began), no checkpoint writes
//     into the database file at all.
//
// PinRead starts such a read while no write transaction or checkpoint runs
// (writeMu), and records what the WAL held at that moment from SQLite's
// wal-index header (the first 100 bytes of the -shm file, whose layout
// walformat.html documents): the frames the read sees (mxFrame) and how
// many of them are already in the database file (nBackfill). Page p of the
// read's database is then the newest of frames nBackfill+1..mxFrame that
// holds p, or else page p of the database file: a checkpoint running
// meanwhile only writes pages that have a frame at or below the read's
// mark, with that frame's content, and a page with no such frame is one
// the image takes from the WAL anyway or one no checkpoint touches.

// walIndexVersion is the wal-index header's iVersion.
const walIndexVersion = 3007000

// LiveRead is a read transaction on the live database, held open on a
// connection of its own, and what the database and its WAL looked like to
// it. While it is open, WAL frames 1..WALFrames are neither moved nor
// overwritten, and pages that have no frame in Backfilled+1..WALFrames
// keep their content in the database file. Close ends it.
type LiveRead struct {
	// Position is the Raft position the read sees.
	Position Position
	// PageSize is the database's page size in bytes.
	PageSize int64
	// Pages is the database's size in pages, as the read sees it.
	Pages int64
	// WALFrames is how many WAL frames the read sees (SQLite's mxFrame).
	WALFrames int64
	// Backfilled is how many of them a checkpoint had already copied into
	// the database file (nBackfill). The frames to read are
	// Backfilled+1..WALFrames; none when they are equal.
	Backfilled int64
	// WALSalt is the salt every frame of the WAL carries (bytes 16..23 of
	// the WAL header); meaningful when there are frames to read.
	WALSalt [8]byte

	db     *DB
	c      *conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	err    error
}

// Done is closed when the read must end before its reader is done: the
// database is closing (Close stops it as it stops streams). Context.Cause
// of Context says why.
func (r *LiveRead) Done() <-chan struct{} { return r.ctx.Done() }

// Context is cancelled when the read must end (see Done) or has ended.
func (r *LiveRead) Context() context.Context { return r.ctx }

// PinRead starts a LiveRead. It counts as a stream (Options.MaxStreams):
// ErrTooManyStreams when they are all taken. It waits for a write
// transaction in progress to end; the read then sees every committed
// write. Callers must Close it.
func (db *DB) PinRead(ctx context.Context) (*LiveRead, error) {
	select {
	case db.streams <- struct{}{}:
	default:
		return nil, ErrTooManyStreams
	}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		<-db.streams
		return nil, ErrClosed
	}
	c, err := db.openReader()
	if err != nil {
		db.mu.RUnlock()
		<-db.streams
		return nil, err
	}
	r := &LiveRead{db: db, c: c}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	db.streamMu.Lock()
	db.active[c] = r.cancel
	db.streamMu.Unlock()
	db.mu.RUnlock()
	if err := r.begin(); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

// begin starts the read transaction and records the WAL's state, with no
// write transaction or checkpoint running.
func (r *LiveRead) begin() error {
	db, c := r.db, r.c
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if err := c.execPrepared(r.ctx, "BEGIN"); err != nil {
		return err
	}
	pos, err := readApplied(r.ctx, c) // the first read: the transaction's snapshot is taken here
	if err != nil {
		return err
	}
	r.Position = pos
	if r.PageSize, err = pragmaInt(r.ctx, c, "PRAGMA page_size"); err != nil {
		return err
	}
	if r.Pages, err = pragmaInt(r.ctx, c, "PRAGMA page_count"); err != nil {
		return err
	}
	return r.readWALIndex()
}

// readWALIndex reads the wal-index header: both copies of WalIndexHdr (48
// bytes each, native byte order) and nBackfill, the first field of
// WalCkptInfo (offset 96). The lock bytes that follow (offset 120 on) are
// not read: on Windows they are locked ranges, which a read may not cross.
func (r *LiveRead) readWALIndex() error {
	shm := r.db.path + "-shm"
	f, err := os.Open(shm)
	if err != nil {
		return fmt.Errorf("live read: open the wal-index: %w", err)
	}
	defer f.Close()
	var b [100]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return fmt.Errorf("live read: read the wal-index header of %s: %w", shm, err)
	}
	h, ne := b[:48], binary.NativeEndian
	if string(h) != string(b[48:96]) || ne.Uint32(h[0:]) != walIndexVersion || h[12] != 1 {
		return fmt.Errorf("live read: %s: unexpected wal-index header (version %d, initialised %d)", shm,
			ne.Uint32(h[0:]), h[12])
	}
	r.WALFrames, r.Backfilled = int64(ne.Uint32(h[16:])), int64(ne.Uint32(b[96:]))
	copy(r.WALSalt[:], h[32:40])
	if r.Backfilled > r.WALFrames {
		return fmt.Errorf("live read: %s: %d frames backfilled of %d", shm, r.Backfilled, r.WALFrames)
	}
	if r.WALFrames == r.Backfilled {
		return nil // the read takes every page from the database file
	}
	v := int64(ne.Uint16(h[14:]))
	pageSize := v&0xfe00 + (v&1)<<16
	if pageSize != r.PageSize || int64(ne.Uint32(h[20:])) != r.Pages {
		return fmt.Errorf("live read: %s: wal-index header says %d pages of %d bytes, the read %d of %d", shm,
			ne.Uint32(h[20:]), pageSize, r.Pages, r.PageSize)
	}
	return nil
}

// pragmaInt runs a PRAGMA that returns one integer.
func pragmaInt(ctx context.Context, c *conn, sql string) (int64, error) {
	st, err := c.prepared(sql)
	if err != nil {
		return 0, err
	}
	var n int64
	err = c.internal(func() error {
		return stepRows(ctx, st, nil, func(v []driver.Value) error {
			n, _ = v[0].(int64)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", sql, err)
	}
	return n, nil
}

// Close ends the read transaction and closes its connection. It is safe to
// call more than once, from any goroutine.
func (r *LiveRead) Close() error {
	r.once.Do(func() {
		r.cancel(nil)
		// ROLLBACK ends a read transaction; closing the connection would
		// too, but a failed ROLLBACK is worth reporting.
		r.err = r.c.execPrepared(context.Background(), "ROLLBACK")
		if r.c.AutoCommit() {
			r.err = nil
		}
		r.err = errors.Join(r.err, r.c.close())
		r.db.streamMu.Lock()
		delete(r.db.active, r.c)
		r.db.streamMu.Unlock()
		<-r.db.streams
	})
	return r.err
}

// The wal-index after its header is a sequence of 32 KiB blocks, one per
// 4096 frames (the first block's share is smaller, the header taking its
// start): each holds the page numbers of its frames (native-endian u32, in
// frame order), then a hash table over them. Entries for frames up to a
// read's mxFrame stay as they are while the read is open.
const (
	walIndexHeaderSize = 136
	walIndexBlock      = 32 << 10
	walIndexBlockPages = 4096
	walIndexFirstPages = walIndexBlockPages - walIndexHeaderSize/4
)

// walIndexEntry is the offset in the wal-index of frame f's page number
// (frames count from 1).
func walIndexEntry(f int64) int64 {
	if f <= walIndexFirstPages {
		return walIndexHeaderSize + 4*(f-1)
	}
	k := (f-walIndexFirstPages-1)/walIndexBlockPages + 1
	return k*walIndexBlock + 4*(f-walIndexFirstPages-(k-1)*walIndexBlockPages-1)
}

// FramePages calls fn with the page number of each WAL frame from
// Backfilled+1 to WALFrames, in order, as the wal-index records them: 4
// bytes read per frame instead of the frame's header in the WAL, which
// would mean reading the whole WAL once more. The WAL's own frame headers
// remain the reference: a backup checks each frame it reads against them.
func (r *LiveRead) FramePages(fn func(frame int64, page uint32)) error {
	if r.WALFrames == r.Backfilled {
		return nil
	}
	f, err := os.Open(r.db.path + "-shm")
	if err != nil {
		return fmt.Errorf("live read: open the wal-index: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 4*walIndexBlockPages)
	for first := r.Backfilled + 1; first <= r.WALFrames; {
		// The frames from first to the end of its block, or to WALFrames.
		off := walIndexEntry(first)
		n := min(r.WALFrames-first+1, (walIndexBlock*((off/walIndexBlock)+1)-walIndexBlock/2-off)/4)
		b := buf[:4*n]
		if _, err := f.ReadAt(b, off); err != nil {
			return fmt.Errorf("live read: read the wal-index: %w", err)
		}
		for i := int64(0); i < n; i++ {
			fn(first+i, binary.NativeEndian.Uint32(b[4*i:]))
		}
		first += n
	}
	return nil
}
