package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/snapshot"
)

// Backup makes a consistent copy of the database as a plain SQLite file and
// hands it to send with the Raft index it reflects. The copy is built from a
// snapshot taken now (incremental, so cheap): the snapshot's files are read
// under a lease, which lasts only while the copy is materialised on local
// disk, not while send ships it to a slow client. The file is removed when
// send returns.
func (n *Node) Backup(ctx context.Context, send func(f *os.File, index uint64) error) error {
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot for backup: %w", err)
	}
	info, ok := n.snapshots.Latest()
	if !ok {
		return errors.New("no snapshot to back up from")
	}
	dir, err := os.MkdirTemp(n.cfg.DataDir, "backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	meta, rc, err := n.snapshots.OpenContext(ctx, "backup", info.ID)
	if err != nil {
		return err
	}
	path, err := snapshot.Restore(rc, dir)
	if err != nil {
		return fmt.Errorf("materialise backup: %w", err)
	}
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return err
	}
	defer f.Close()
	return send(f, meta.Index)
}
