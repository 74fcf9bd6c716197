package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

var backupSeq atomic.Uint64

// Backup materialises snapshot id as one plain SQLite file and hands it to
// send with the meta of the snapshot it was built from (if consolidation
// merged id away meanwhile, the newest snapshot's; see OpenContext). The
// snapshot's files are read under a lease named "backup", held only while
// the file is built, not while send ships it.
//
// The file lives in a directory of its own under the store's tmp/ (which
// the next start empties, should the process die meanwhile). When send
// returns, the file is closed and then the directory removed, in the order
// Windows requires; a failure to remove it is logged and returned, joined
// with send's error.
func (c *Catalog) Backup(ctx context.Context, id string, send func(r io.Reader, meta *raft.SnapshotMeta) error) error {
	dir, err := c.makeTempDir("backup")
	if err != nil {
		return err
	}
	err = c.backupIn(ctx, dir, id, send)
	if rerr := c.fs.RemoveAll(dir); rerr != nil {
		rerr = fmt.Errorf("remove backup directory %s: %w", dir, rerr)
		c.log.Error("backup left its temporary directory behind", "dir", dir, "error", rerr)
		err = errors.Join(err, rerr)
	}
	return err
}

func (c *Catalog) backupIn(ctx context.Context, dir, id string, send func(io.Reader, *raft.SnapshotMeta) error) error {
	meta, rc, err := c.OpenContext(ctx, "backup", id)
	if err != nil {
		return err
	}
	path, err := restoreFS(c.fs, rc, dir) // closes rc, which ends the lease
	if err != nil {
		return fmt.Errorf("materialise backup: %w", err)
	}
	f, err := c.fs.Open(path)
	if err != nil {
		return err
	}
	err = send(f, meta)
	if cerr := f.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// makeTempDir creates a new directory under tmp/ named prefix-*.
func (c *Catalog) makeTempDir(prefix string) (string, error) {
	if err := c.fs.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return "", err
	}
	for {
		dir := filepath.Join(c.tmpDir(), fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), backupSeq.Add(1)))
		taken, err := c.exists(dir)
		if err != nil {
			return "", err
		}
		if !taken {
			return dir, c.fs.MkdirAll(dir, 0o755)
		}
	}
}
