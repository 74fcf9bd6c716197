package raftlog

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft-wal/types"
)

// errInjected is the error every injected fault returns.
var errInjected = errors.New("injected fault")

// fault is an operation faults can fail.
type fault int

const (
	// faultTornWrite writes the first half of a segment write, then fails.
	faultTornWrite fault = iota
	// faultSyncBefore fails a segment file's Sync without syncing.
	faultSyncBefore
	// faultSyncAfter fails a segment file's Sync after it synced: the
	// entries are on disk but reported as not written, as when Windows
	// refused the directory sync after a new segment's first file sync.
	faultSyncAfter
	// faultNewFileSync is faultSyncAfter on the first Sync of a segment file
	// this run created: Windows refusing a new segment's directory sync.
	faultNewFileSync
	// faultCreate fails the creation of a segment file.
	faultCreate
	// faultOpenWriter fails the opening of a segment file for writing.
	faultOpenWriter
	// faultCommit fails a metadata commit before it happens.
	faultCommit
)

// faults fails the next n operations of the kinds it was armed with. It sits
// between raft-wal and the store's real file system and meta store, through
// the narrow interfaces raft-wal uses (types.VFS, types.WritableFile,
// types.MetaStore).
type faults struct {
	mu    sync.Mutex
	armed map[fault]int
	hit   map[fault]int
}

func newFaults() *faults { return &faults{armed: map[fault]int{}, hit: map[fault]int{}} }

// arm makes the next n operations of kind k fail.
func (f *faults) arm(k fault, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed[k] = n
}

// hits is how many operations of kind k failed.
func (f *faults) hits(k fault) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit[k]
}

// take reports whether this operation of kind k is to fail.
func (f *faults) take(k fault) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed[k] == 0 {
		return false
	}
	f.armed[k]--
	f.hit[k]++
	return true
}

func (f *faults) wrapVFS(v types.VFS) types.VFS { return faultVFS{VFS: v, f: f} }

func (f *faults) wrapMeta(m types.MetaStore) types.MetaStore { return faultMeta{MetaStore: m, f: f} }

type faultVFS struct {
	types.VFS
	f *faults
}

func (v faultVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if v.f.take(faultCreate) {
		return nil, errInjected
	}
	wf, err := v.VFS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return &faultFile{WritableFile: wf, f: v.f, created: true}, nil
}

func (v faultVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	if v.f.take(faultOpenWriter) {
		return nil, errInjected
	}
	wf, err := v.VFS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return &faultFile{WritableFile: wf, f: v.f}, nil
}

// faultFile is a segment file open for writing; raft-wal writes and syncs
// it from one goroutine at a time.
type faultFile struct {
	types.WritableFile
	f               *faults
	created, synced bool
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if ff.f.take(faultTornWrite) {
		n, err := ff.WritableFile.WriteAt(p[:len(p)/2], off)
		return n, errors.Join(errInjected, err)
	}
	return ff.WritableFile.WriteAt(p, off)
}

func (ff *faultFile) Sync() error {
	if ff.f.take(faultSyncBefore) {
		return errInjected
	}
	if err := ff.WritableFile.Sync(); err != nil {
		return err
	}
	first := ff.created && !ff.synced
	ff.synced = true
	if ff.f.take(faultSyncAfter) || first && ff.f.take(faultNewFileSync) {
		return errInjected
	}
	return nil
}

type faultMeta struct {
	types.MetaStore
	f *faults
}

func (m faultMeta) CommitState(st types.PersistentState) error {
	if m.f.take(faultCommit) {
		return errInjected
	}
	return m.MetaStore.CommitState(st)
}
