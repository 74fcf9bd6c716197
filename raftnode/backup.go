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
// hands it to send with the Raft index it reflects. The copy is built from a
// snapshot taken now (incremental, so cheap) by the snapshot store
// (snapshot.Store.Backup): the snapshot's files are read under a lease, which
// lasts only while the copy is materialised in the store's tmp/ directory,
// not while send ships it to a slow client. When send returns, the file is
// closed and its directory removed; a failure to remove it is returned.
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
