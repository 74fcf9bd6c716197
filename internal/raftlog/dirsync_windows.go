//go:build windows

package raftlog

// dirSyncPolicy is nil: Windows refuses to flush a directory handle
// (FlushFileBuffers on it fails with ERROR_ACCESS_DENIED), and NTFS journals
// metadata changes (file creation, rename, deletion) itself. See "Raft log
// store on Windows" in raftnode/DESIGN.md.
var dirSyncPolicy func(dir string) error
