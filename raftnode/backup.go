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

// Dump hands send a writer of the database as a SQL text dump (see
// sqlitedb.LiveRead.DumpSQL), with the Raft index it reflects: the state
// after the last write applied when the dump started. It reads through a
// read transaction of its own on the live database, as a QueryStream
// does, and takes no lease: writes go on meanwhile, and an install of a
// snapshot ends the dump (the client retries) rather than waiting for it.
// Memory is one row at a time whatever the database's size.
func (n *Node) Dump(ctx context.Context, send func(dump func(w io.Writer) error, index uint64) error) error {
	pin, err := n.db.PinRead(ctx)
	if err != nil {
		return err
	}
	defer pin.Close()
	return send(pin.DumpSQL, pin.Position.Index)
}
