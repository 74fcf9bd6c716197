package raftnode

import (
	"context"
	"io"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// Backup hands send a consistent copy of the database as a plain SQLite
// file, with the Raft index it reflects: the state after the last write
// applied when the backup started. The copy is read straight from the
// live database's files (snapshot.LiveBackup): a read transaction pins
// what it sees, each page is read from the WAL frame that holds its newest
// version or else from the database file, and writes go on meanwhile. No
// snapshot is taken and nothing is written; an install waits for the
// backup's lease, which lasts until send returns (or ctx ends, or send
// stops reading for the lease idle timeout). Memory stays the same
// whatever the database's size.
func (n *Node) Backup(ctx context.Context, send func(r io.Reader, index uint64) error) error {
	return n.snapshots.BackupLive(ctx, n.db, func(r io.Reader, pos sqlitedb.Position, _ int64) error {
		return send(r, pos.Index)
	})
}
