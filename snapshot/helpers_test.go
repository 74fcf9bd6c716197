package snapshot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// tempDir is t.TempDir without relying on os.RemoveAll, which fails under
// wine: cleanup walks the tree with OSFS.RemoveAll and ignores errors.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "snaptest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { OSFS{}.RemoveAll(dir) })
	return dir
}

func nullLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("component", "snapshot")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// env is a live database with a store, as a node has them.
type env struct {
	t     testing.TB
	dir   string
	db    *sqlitedb.DB
	fs    *StrictFS
	store *Store
	opts  Options
	index uint64
	sums  map[uint64]string // checksum of the live database at each snapshot's index
	// noSums skips recording checksums (benchmarks time snapshots alone).
	noSums bool
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t, dir: tempDir(t), sums: map[uint64]string{}}
	db, err := sqlitedb.Open(filepath.Join(e.dir, "live.db"), sqlitedb.Options{AutoCheckpoint: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { db.Close() })
	e.opts = opts
	e.openStore()
	e.write(1, 10)
	return e
}

func (e *env) openStore() {
	e.t.Helper()
	e.fs = NewStrictFS()
	o := e.opts
	o.FS = e.fs
	if o.Logger == nil {
		o.Logger = testLogger(e.t)
	}
	s, err := New(filepath.Join(e.dir, "snapshots"), o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
	e.t.Cleanup(func() { s.Close() })
}

// write applies one Raft entry: n rows of size bytes (table t is created on
// first use).
func (e *env) write(n, size int) {
	e.t.Helper()
	tx, err := e.db.Begin()
	if err != nil {
		e.t.Fatal(err)
	}
	e.index++
	tx.SetClock(time.Unix(1700000000, 0), e.index)
	stmts := []*sqlraftv1.Statement{{Sql: "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)"}}
	for i := 0; i < n; i++ {
		stmts = append(stmts, &sqlraftv1.Statement{Sql: fmt.Sprintf("INSERT INTO t(v) VALUES(randomblob(%d))", size)})
	}
	for _, s := range stmts {
		if msg := tx.Run(s, false).GetExecute().GetError(); msg != "" {
			e.t.Fatal(msg)
		}
	}
	if err := tx.SetApplied(sqlitedb.Position{Index: e.index, Term: 1}); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) checksum() string {
	e.t.Helper()
	_, sum, err := e.db.Checksum(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return sum
}

// snapshot does what Raft does: FSM.Snapshot (Capture), Create, Persist,
// Release. It returns the new snapshot's id or the error.
func (e *env) snapshot(full bool) (string, error) {
	f, err := e.store.Capture(e.db, full)
	if err != nil {
		return "", err
	}
	defer f.Release()
	if !e.noSums {
		e.sums[e.index] = e.checksum()
	}
	sink, err := e.store.Create(raft.SnapshotVersionMax, e.index, 1, raft.Configuration{}, 0, nil)
	if err != nil {
		return "", err
	}
	if err := f.Persist(sink); err != nil {
		return "", err
	}
	return sink.ID(), nil
}

func (e *env) mustSnapshot(full bool) Info {
	e.t.Helper()
	id, err := e.snapshot(full)
	if err != nil {
		e.t.Fatal(err)
	}
	in, err := e.store.Info(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// restoredChecksum opens snapshot id, restores it to a file and returns the
// checksum of the database it yields.
func (e *env) restoredChecksum(id string) string {
	e.t.Helper()
	_, rc, err := e.store.Open(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return checksumOfStream(e.t, rc, e.dir)
}

func checksumOfStream(t testing.TB, rc io.ReadCloser, dir string) string {
	t.Helper()
	path, err := Restore(rc, dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlitedb.Open(path, sqlitedb.Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, sum, err := db.Checksum(context.Background())
	db.Close()
	OSFS{}.Remove(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// done runs fn in a goroutine and returns a channel closed with its error.
func done(fn func() error) <-chan error {
	ch := make(chan error, 1)
	var once sync.Once
	go func() { once.Do(func() { ch <- fn() }) }()
	return ch
}
