package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// BackupChunk is the size of the reads a backup's reader is best read
// with: it reads the database's files ahead of its caller in chunks of
// this size.
const BackupChunk = 1 << 20

// backupReadAhead is how many chunks a backup reads ahead of its caller.
const backupReadAhead = 2

// LiveSource is what a backup needs of the live database: its files, and a
// read transaction that pins them (see sqlitedb.LiveRead). *sqlitedb.DB
// implements it.
type LiveSource interface {
	// Path is the database file.
	Path() string
	// WALPath is the database's write-ahead log.
	WALPath() string
	// PinRead starts a read transaction and says what the WAL held then.
	PinRead(ctx context.Context) (*sqlitedb.LiveRead, error)
}

var _ LiveSource = (*sqlitedb.DB)(nil)

// livePaths are the live database's files: a backup's lease covers them,
// and an install's swap waits for every lease on them.
func livePaths(dbPath string) []string {
	return []string{dbPath, dbPath + "-wal", dbPath + "-shm"}
}

// LiveBackup streams the live database as one plain SQLite file, as of a
// moment, while writes go on: no snapshot is taken and nothing is written.
// It keeps no state: each backup has a lease on the live files, which an
// install's swap of those files waits for (Installer.swap).
type LiveBackup struct {
	fs     FS
	leases *LeaseManager
	log    *slog.Logger
}

// Backup hands send the live database db as one SQLite file (its size in
// bytes, and the Raft position it reflects), composed as send reads it:
// each page is read from the WAL frame that holds its newest version as of
// the backup's start, or else from the database file (see
// sqlitedb.LiveRead for why both stay valid while writes and checkpoints
// go on). A lease named "backup" on the live files is taken before any of
// them is opened, and held until send returns, ctx ends, or send stops
// reading for the lease idle timeout (reads then fail with
// ErrLeaseRevoked); an install waits for it. Memory is a few chunks
// (BackupChunk) plus an index of the pages the WAL holds beyond the last
// checkpoint, whatever the database's size.
func (b *LiveBackup) Backup(ctx context.Context, db LiveSource, send func(r io.Reader, pos sqlitedb.Position, size int64) error) error {
	lease, err := b.leases.Acquire(ctx, "backup", livePaths(db.Path())...)
	if err != nil {
		return err
	}
	defer lease.Release()
	pin, err := db.PinRead(lease.ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer pin.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // either ending ends the other: the files close, the read ends
		select {
		case <-pin.Done():
			lease.end(fmt.Errorf("%w (backup): %v", ErrLeaseRevoked, context.Cause(pin.Context())))
			pin.Close()
		case <-lease.Done():
			pin.Close()
		case <-stop:
		}
	}()
	img, err := b.compose(lease, db, pin)
	if err != nil {
		return err
	}
	b.log.Debug("backup started", "index", pin.Position.Index, "bytes", img.Size(), "wal_frames", pin.WALFrames,
		"backfilled", pin.Backfilled, "pages_from_wal", len(img.patches))
	ra := newReadAhead(img, BackupChunk, backupReadAhead)
	err = send(ra, pin.Position, img.Size())
	ra.Close() // before the files close under it
	img.Close()
	return err
}

// compose opens the live database file and WAL through lease and returns
// the reader of the image pin sees.
func (b *LiveBackup) compose(lease *Lease, db LiveSource, pin *sqlitedb.LiveRead) (_ *imageReader, err error) {
	r := &imageReader{pageSize: pin.PageSize, size: pin.Pages * pin.PageSize, salt: pin.WALSalt}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.base, err = lease.open(b.fs, db.Path()); err != nil {
		return nil, err
	}
	fi, err := b.fs.Stat(db.Path())
	if err != nil {
		return nil, err
	}
	r.baseLimit = min(fi.Size(), r.size)
	if pin.WALFrames == pin.Backfilled {
		return r, nil // every page is in the database file
	}
	wal, err := lease.open(b.fs, db.WALPath())
	if err != nil {
		return nil, err
	}
	r.wal = wal
	if r.patches, err = indexLiveWAL(wal, pin); err != nil {
		return nil, fmt.Errorf("backup: live WAL %s: %w", db.WALPath(), err)
	}
	return r, nil
}

// indexLiveWAL returns, for each page that WAL frames pin.Backfilled+1 ..
// pin.WALFrames hold (pages past the database's end left out), where its
// newest version is, sorted by page. The frames' page numbers come from
// SQLite's wal-index (pin.FramePages), which is checked against the WAL:
// the header's salt and page size, and the last frame being the commit of
// a database of pin.Pages pages here; every frame the backup reads, as it
// reads it (imageReader.checkFrame).
func indexLiveWAL(wal io.ReaderAt, pin *sqlitedb.LiveRead) ([]pagePatch, error) {
	var hdr [walHeaderSize]byte
	if _, err := wal.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	if string(hdr[16:24]) != string(pin.WALSalt[:]) || int64(binary.BigEndian.Uint32(hdr[8:])) != pin.PageSize {
		return nil, errors.New("the WAL's header does not match its wal-index")
	}
	frameSize := walFrameHeaderSize + pin.PageSize
	last := map[uint32]uint32{} // page -> its newest frame
	var lastPage uint32
	err := pin.FramePages(func(frame int64, page uint32) {
		last[page], lastPage = uint32(frame), page
	})
	if err != nil {
		return nil, err
	}
	var fh [walFrameHeaderSize]byte
	if _, err := wal.ReadAt(fh[:], walHeaderSize+(pin.WALFrames-1)*frameSize); err != nil {
		return nil, fmt.Errorf("read frame %d: %w", pin.WALFrames, err)
	}
	if binary.BigEndian.Uint32(fh[0:]) != lastPage || int64(binary.BigEndian.Uint32(fh[4:])) != pin.Pages ||
		string(fh[8:16]) != string(pin.WALSalt[:]) {
		return nil, fmt.Errorf("%w: frame %d is not the commit of %d pages that the wal-index and the read say",
			errIndexMismatch, pin.WALFrames, pin.Pages)
	}
	patches := make([]pagePatch, 0, len(last))
	for p, f := range last {
		if int64(p) <= pin.Pages { // a commit cut the database below it
			patches = append(patches, pagePatch{page: p, frame: f})
		}
	}
	slices.SortFunc(patches, func(a, b pagePatch) int { return int(int64(a.page) - int64(b.page)) })
	return patches, nil
}
