package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/snapshot"
)

// Backup makes a consistent copy of the database as a plain SQLite file and
// hands it to send with the Raft index it reflects. The copy is read from a
// snapshot taken now (incremental, so cheap) by the snapshot store
// (snapshot.Store.Backup): no copy of the database is written anywhere;
// each page is read, as send reads, from the snapshot's base database or
// from the WAL file that holds its newest version, under a lease that lasts
// until send returns (or ctx ends, or send stops reading for the lease idle
// timeout). Memory stays the same whatever the database's size.
func (n *Node) Backup(ctx context.Context, send func(r io.Reader, index uint64) error) error {
	// A capture superseded by an install (Raft keeps only the error's
	// text) leaves the installed snapshot as the latest: back up from it.
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) &&
		!strings.Contains(err.Error(), snapshot.ErrSuperseded.Error()) {
		return fmt.Errorf("snapshot for backup: %w", err)
	}
	info, ok := n.snapshots.Latest()
	if !ok {
		return errors.New("no snapshot to back up from")
	}
	return n.snapshots.Backup(ctx, info.ID, func(r io.Reader, meta *raft.SnapshotMeta) error {
		return send(r, meta.Index)
	})
}
