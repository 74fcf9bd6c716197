//go:build !windows

package raftlog

import "os"

// dirSyncPolicy is syncDir: this operating system flushes directories, and a
// newly created, renamed or deleted file's directory entry is durable only
// once its directory is synced.
var dirSyncPolicy = syncDir

// syncDir fsyncs the directory dir.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
