package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// BackupChunk is the size of the reads a backup's reader is best read
// with: it reads the snapshot's files ahead of its caller in chunks of
// this size.
const BackupChunk = 1 << 20

// backupReadAhead is how many chunks a backup reads ahead of its caller.
const backupReadAhead = 2

// Backup hands send snapshot id as one plain SQLite database file (the
// file Restore would build from it, byte for byte) with the meta of the
// snapshot it reads (if consolidation merged id away meanwhile, the
// newest snapshot's; see leaseChain); meta.Size is the file's length.
//
// Nothing is written: the file is composed as send reads it, each page
// read from the chain's base database or from the WAL that holds its
// newest version (see compose.go), under a lease named "backup" that lasts
// until send returns. The lease ends sooner if ctx ends or send stops
// reading for the lease idle timeout; reads then fail with ErrLeaseRevoked.
// Every file is checked against its sha256 and the last bytes are handed
// out only once all of them matched, so a backup of a corrupt snapshot
// fails (ErrChecksum) instead of ending as a damaged file. Memory is a few
// chunks (BackupChunk) plus an index of the WALs' pages, whatever the
// database's size.
func (c *Catalog) Backup(ctx context.Context, id string, send func(r io.Reader, meta *raft.SnapshotMeta) error) error {
	plan, lease, err := c.leaseChain(ctx, "backup", id, nil)
	if err != nil {
		return err
	}
	defer lease.Release()
	img, err := composeImage(lease, c.fs, plan.chain)
	if err == nil {
		meta := plan.meta.SnapshotMeta
		meta.Size = img.Size()
		ra := newReadAhead(img, BackupChunk, backupReadAhead)
		err = send(ra, &meta)
		ra.Close() // before the files close under it
		img.Close()
	}
	if errors.Is(err, ErrChecksum) {
		err = fmt.Errorf("backup of snapshot %s: %w", plan.meta.ID, err)
		c.errs.set(err)
	}
	return err
}
