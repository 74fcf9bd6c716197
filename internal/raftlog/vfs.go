package raftlog

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
)

// vfs is raft-wal's file system (fs.FS) with its directory syncs made a
// policy: syncDir syncs a directory, and is nil where the operating system
// refuses to (Windows). raft-wal's own fs.FS syncs the directory when a
// segment file is first synced and after every deletion, and fails the
// operation when that sync fails, which on Windows is always.
type vfs struct {
	fs      *fs.FS
	syncDir func(dir string) error
}

var _ types.VFS = (*vfs)(nil)

func newVFS(syncDir func(string) error) *vfs {
	return &vfs{fs: fs.New(), syncDir: syncDir}
}

// ListDir implements types.VFS.
func (v *vfs) ListDir(dir string) ([]string, error) { return v.fs.ListDir(dir) }

// OpenReader implements types.VFS.
func (v *vfs) OpenReader(dir, name string) (types.ReadableFile, error) {
	return v.fs.OpenReader(dir, name)
}

// Create implements types.VFS: raft-wal's Create (which preallocates the
// file), with the directory synced on the file's first Sync by this
// package's policy instead of always.
func (v *vfs) Create(dir, name string, size uint64) (types.WritableFile, error) {
	wf, err := v.fs.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	f, ok := wf.(*fs.File)
	if !ok { // raft-wal changed; refuse rather than lose the directory sync
		wf.Close()
		return nil, fmt.Errorf("raftlog: raft-wal's fs.Create returned %T, not *fs.File", wf)
	}
	// &f.File is the file without fs.File's Sync, which always syncs the
	// directory.
	return &segmentFile{WritableFile: &f.File, dir: dir, name: name, syncDir: v.syncDir}, nil
}

// OpenWriter implements types.VFS. The directory is synced on the file's
// first Sync too: a file reopened after a failed write or a crash may have
// been created by a run whose directory sync never happened.
func (v *vfs) OpenWriter(dir, name string) (types.WritableFile, error) {
	wf, err := v.fs.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return &segmentFile{WritableFile: wf, dir: dir, name: name, syncDir: v.syncDir}, nil
}

// Delete implements types.VFS: the file is removed, then its directory
// synced where the policy allows. raft-wal closes a segment before deleting
// it, and logs (and otherwise ignores) a failed deletion; a segment file it
// could not delete is not in its metadata, so the next Open deletes it.
func (v *vfs) Delete(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	if v.syncDir == nil {
		return nil
	}
	if err := v.syncDir(dir); err != nil {
		return fmt.Errorf("sync directory after deleting %s: %w", name, err)
	}
	return nil
}

// segmentFile is a segment file open for writing. Its first successful Sync
// also syncs its directory (where the policy allows), so that a new file's
// directory entry is durable before the first entries written to it are
// acknowledged. Unlike raft-wal's fs.File it retries the directory sync on
// the next Sync if it failed.
type segmentFile struct {
	types.WritableFile
	dir, name string
	syncDir   func(string) error
	dirSynced atomic.Bool
}

// Sync flushes the file and, the first time, its directory.
func (f *segmentFile) Sync() error {
	if err := f.WritableFile.Sync(); err != nil {
		return err
	}
	if f.syncDir == nil || f.dirSynced.Load() {
		return nil
	}
	if err := f.syncDir(f.dir); err != nil {
		return fmt.Errorf("sync directory of new file %s: %w", f.name, err)
	}
	f.dirSynced.Store(true)
	return nil
}
