package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

var errCrash = errors.New("simulated crash")

// crashFS fails every operation once the process is "dead", so that error
// paths cannot tidy up: the disk stays as the crash left it.
type crashFS struct {
	FS
	dead *atomic.Bool
}

func (c crashFS) check() error {
	if c.dead.Load() {
		return errCrash
	}
	return nil
}

func (c crashFS) Open(name string) (File, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return crashFile{f, c.dead}, nil
}

func (c crashFS) Create(name string) (File, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	f, err := c.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return crashFile{f, c.dead}, nil
}

func (c crashFS) Rename(o, n string) error {
	return errors.Join(c.check(), c.orDo(func() error { return c.FS.Rename(o, n) }))
}
func (c crashFS) Remove(n string) error {
	return errors.Join(c.check(), c.orDo(func() error { return c.FS.Remove(n) }))
}
func (c crashFS) RemoveAll(n string) error {
	return errors.Join(c.check(), c.orDo(func() error { return c.FS.RemoveAll(n) }))
}
func (c crashFS) MkdirAll(n string, p fs.FileMode) error {
	return errors.Join(c.check(), c.orDo(func() error { return c.FS.MkdirAll(n, p) }))
}
func (c crashFS) SyncDir(n string) error {
	return errors.Join(c.check(), c.orDo(func() error { return c.FS.SyncDir(n) }))
}

func (c crashFS) orDo(fn func() error) error {
	if c.dead.Load() {
		return nil
	}
	return fn()
}

type crashFile struct {
	File
	dead *atomic.Bool
}

func (f crashFile) Write(p []byte) (int, error) {
	if f.dead.Load() {
		return 0, errCrash
	}
	return f.File.Write(p)
}

func (f crashFile) Sync() error {
	if f.dead.Load() {
		return errCrash
	}
	return f.File.Sync()
}

var crashSteps = []struct {
	step string
	nth  int
}{
	{"capture.checkpointed", 1}, {"capture.copied", 1}, // full capture
	{"capture.copied", 2}, {"capture.checkpointed", 2}, // incremental capture
	{"persist.data", 1}, {"persist.meta", 1}, {"persist.renamed", 1},
	{"persist.data", 2}, {"persist.meta", 2}, {"persist.renamed", 2},
	{"consolidate.journal", 1}, {"consolidate.wal-moved", 1}, {"consolidate.checkpointed", 1},
	{"consolidate.wal-moved", 2}, {"consolidate.checkpointed", 2}, {"consolidate.moved", 1},
	{"consolidate.meta", 1}, {"consolidate.pruned", 1}, {"consolidate.done", 1},
	{"persist.renamed", 5}, // the full snapshot that starts a new chain
}

// TestRecoveryAfterCrashAtEachStep interrupts creation and consolidation
// after each step in turn (the failing FS stops all further disk changes,
// open handles are closed as at process death), reopens the store and
// checks it repaired itself: every listed snapshot restores to the content
// it was taken from, no temporary file or journal is left, and snapshots
// and consolidation work again.
func TestRecoveryAfterCrashAtEachStep(t *testing.T) {
	for _, c := range crashSteps {
		t.Run(fmt.Sprintf("%s#%d", c.step, c.nth), func(t *testing.T) {
			crashAt(t, c.step, c.nth)
		})
	}
}

func crashAt(t *testing.T, step string, nth int) {
	var dead atomic.Bool
	seen := map[string]int{}
	hook := func(s string) error {
		if dead.Load() {
			return errCrash
		}
		if seen[s]++; s == step && seen[s] == nth {
			dead.Store(true)
			return errCrash
		}
		return nil
	}
	e := newEnv(t, Options{ConsolidateAfter: -1, hook: hook})
	strict := e.fs
	e.store.Close()
	// The same store on a file system that dies with the hook, with its
	// janitor stopped (Close) so that nothing runs in the background.
	o := e.opts
	o.FS, o.Logger = crashFS{strict, &dead}, testLogger(t)
	crashing, err := New(e.store.Dir(), o)
	if err != nil {
		t.Fatal(err)
	}
	crashing.Close()
	e.store = crashing
	sequence := []func() error{
		func() error { e.write(50, 500); _, err := e.snapshot(false); return err },
		func() error { e.write(5, 500); _, err := e.snapshot(false); return err },
		func() error { e.write(5, 500); _, err := e.snapshot(false); return err },
		func() error { return e.store.Consolidate(context.Background()) },
		func() error { e.write(5, 500); _, err := e.snapshot(false); return err },
		func() error { e.write(5, 500); _, err := e.snapshot(true); return err },
	}
	for i, op := range sequence {
		err := op()
		if dead.Load() {
			if !errors.Is(err, errCrash) {
				t.Fatalf("op %d after crash: %v", i, err)
			}
			break
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if !dead.Load() {
		t.Fatalf("step %s#%d never reached", step, nth)
	}
	strict.closeAll()
	e.opts.hook = nil
	e.openStore()
	checkRecovered(t, e)
}

func checkRecovered(t *testing.T, e *env) {
	t.Helper()
	for _, in := range e.store.Stats().Snapshots {
		want, ok := e.sums[in.Index]
		if !ok {
			t.Fatalf("snapshot %s at index %d was never taken", in.ID, in.Index)
		}
		if got := e.restoredChecksum(in.ID); got != want {
			t.Fatalf("snapshot %s restores to %s, want %s", in.ID, got, want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.store.Dir(), "tmp")); len(ents) != 0 {
		t.Fatalf("tmp not cleared: %v", ents)
	}
	if _, err := os.Stat(e.store.catalog.journalPath()); !os.IsNotExist(err) {
		t.Fatalf("journal left: %v", err)
	}
	e.write(5, 500)
	if in := e.mustSnapshot(false); in.Kind != KindFull {
		t.Fatalf("first snapshot after restart is %v", in.Kind)
	}
	e.write(5, 500)
	if in := e.mustSnapshot(false); in.Kind != KindIncremental {
		t.Fatalf("chain did not resume: %v", in.Kind)
	}
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.restoredChecksum(e.store.Stats().Snapshots[0].ID); got != e.checksum() {
		t.Fatal("latest snapshot differs from the live database")
	}
}
