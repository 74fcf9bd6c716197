package raftnode

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"
)

// Snapshot implements raft.FSM. It runs on the FSM goroutine, so no entry is
// applied while it copies: the copy is a consistent VACUUM INTO of the
// database, which Persist then streams into the store.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	tmp, err := os.CreateTemp(f.tmpDir, "snapshot-*.db")
	if err != nil {
		return nil, err
	}
	path := tmp.Name()
	tmp.Close()
	os.Remove(path) // VACUUM INTO wants to create the file itself
	if err := f.db.Backup(context.Background(), path); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("snapshot copy: %w", err)
	}
	return &fileSnapshot{path: path}, nil
}

// fileSnapshot is a full copy of the database waiting to be persisted.
type fileSnapshot struct{ path string }

// Persist implements raft.FSMSnapshot.
func (s *fileSnapshot) Persist(sink raft.SnapshotSink) error {
	fh, err := os.Open(s.path)
	if err != nil {
		sink.Cancel()
		return err
	}
	defer fh.Close()
	if _, err := io.Copy(sink, fh); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fileSnapshot) Release() { os.Remove(s.path) }

// Restore implements raft.FSM: the stream is a complete SQLite file. It is
// written beside the database and swapped in only once fully received, so
// a cut stream leaves the old database in place.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp, err := os.CreateTemp(f.tmpDir, "restore-*.db")
	if err != nil {
		return err
	}
	path := tmp.Name()
	_, err = io.Copy(tmp, rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("receive snapshot: %w", err)
	}
	if err := f.db.Replace(path); err != nil {
		os.Remove(path)
		return fmt.Errorf("install snapshot: %w", err)
	}
	f.restores.Add(1)
	return f.reload()
}
