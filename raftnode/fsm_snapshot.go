package raftnode

import (
	"context"
	"io"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/snapshot"
)

// SnapshotStore is what a node needs from its snapshot store: Raft's
// interface, plus the FSM's side of taking and installing snapshots.
// snapshot.Store is the implementation.
type SnapshotStore interface {
	raft.SnapshotStore
	// Capture takes the FSM's side of a snapshot; it runs on the FSM
	// goroutine, so no write happens while it runs.
	Capture(db *sqlitedb.DB, fullRequired bool) (raft.FSMSnapshot, error)
	// Install replaces db's content with a snapshot stream, verifying it
	// first; a failed install leaves db as it was.
	Install(db *sqlitedb.DB, rc io.ReadCloser) error
	// Stats describes the store for ClusterService.Status.
	Stats() snapshot.Stats
	// Latest describes the newest snapshot.
	Latest() (snapshot.Info, bool)
	// OpenContext opens a snapshot's stream for a reader other than Raft
	// under a lease named name; ending ctx revokes the lease.
	OpenContext(ctx context.Context, name, id string) (*raft.SnapshotMeta, io.ReadCloser, error)
	// BackupLive hands send the live database as a plain SQLite file, as
	// of the moment it starts, composed from the live files as send reads
	// it, under a lease (which an install waits for) that lasts until send
	// returns.
	BackupLive(ctx context.Context, db snapshot.LiveSource, send func(r io.Reader, pos sqlitedb.Position, size int64) error) error
	// ServePull serves another node's pull of a snapshot this node's Raft
	// offered it (see pull.go).
	ServePull(ctx context.Context, token, id string) (*snapshot.Pull, error)
	Close() error
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return f.store.Capture(f.db, false)
}

// Restore implements raft.FSM: the store verifies the stream and swaps the
// database only once it is complete, closing every connection first.
func (f *FSM) Restore(rc io.ReadCloser) error {
	if err := f.store.Install(f.db, rc); err != nil {
		return err
	}
	f.restores.Add(1)
	if f.afterInstall != nil {
		f.afterInstall()
	}
	return f.reload()
}
