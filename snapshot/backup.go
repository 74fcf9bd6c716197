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
func (s *Store) Backup(ctx context.Context, id string, send func(r io.Reader, meta *raft.SnapshotMeta) error) error {
	dir, err := s.makeTempDir("backup")
	if err != nil {
		return err
	}
	err = s.backupIn(ctx, dir, id, send)
	if rerr := s.fs.RemoveAll(dir); rerr != nil {
		rerr = fmt.Errorf("remove backup directory %s: %w", dir, rerr)
		s.log.Error("backup left its temporary directory behind", "dir", dir, "error", rerr)
		err = errors.Join(err, rerr)
	}
	return err
}

func (s *Store) backupIn(ctx context.Context, dir, id string, send func(io.Reader, *raft.SnapshotMeta) error) error {
	meta, rc, err := s.OpenContext(ctx, "backup", id)
	if err != nil {
		return err
	}
	path, err := restoreFS(s.fs, rc, dir) // closes rc, which ends the lease
	if err != nil {
		return fmt.Errorf("materialise backup: %w", err)
	}
	f, err := s.fs.Open(path)
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
func (s *Store) makeTempDir(prefix string) (string, error) {
	if err := s.fs.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return "", err
	}
	for {
		dir := filepath.Join(s.tmpDir(), fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), backupSeq.Add(1)))
		taken, err := s.exists(dir)
		if err != nil {
			return "", err
		}
		if !taken {
			return dir, s.fs.MkdirAll(dir, 0o755)
		}
	}
}
