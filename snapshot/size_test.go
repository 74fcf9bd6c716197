package snapshot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// exec applies one Raft entry running sql, in its own SQLite transaction.
func (e *env) exec(sql ...string) {
	e.t.Helper()
	tx, err := e.db.Begin()
	if err != nil {
		e.t.Fatal(err)
	}
	e.index++
	tx.SetClock(time.Unix(1700000000, 0), e.index)
	for _, q := range sql {
		if msg := tx.Run(&sqlraftv1.Statement{Sql: q}, false).GetExecute().GetError(); msg != "" {
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

// fill makes the live database about rows × 1000 bytes, in table u.
func (e *env) fill(rows int) {
	e.t.Helper()
	e.exec("CREATE TABLE u(id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
	for i := 0; i < rows; i += 500 {
		e.exec(fmt.Sprintf(`INSERT INTO u(id, n, v) SELECT %d + i, 0, randomblob(1000)
			FROM (WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < 499) SELECT i FROM s)`, i))
	}
}

// updateSameRows makes n one-row updates, each its own transaction,
// cycling over the first rows rows: every commit rewrites the same few
// pages, so the WAL holds many frames per page.
func (e *env) updateSameRows(n, rows int) {
	for i := 0; i < n; i++ {
		e.exec(fmt.Sprintf("UPDATE u SET n = n + 1, v = randomblob(1000) WHERE id = %d", i%rows))
	}
}

func (e *env) liveWALSize() int64 {
	fi, err := os.Stat(e.db.WALPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// liveDBSize is the live database file's size; call it just after a
// snapshot, whose checkpoint leaves the file holding the whole database.
func (e *env) liveDBSize() int64 {
	e.t.Helper()
	fi, err := os.Stat(e.db.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	return fi.Size()
}

// streamBytes reads snapshot id's stream to the end and returns its length
// and the size Open announced.
func (e *env) streamBytes(id string) (n, announced int64) {
	e.t.Helper()
	meta, rc, err := e.store.Open(id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	n, err = io.Copy(io.Discard, rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return n, meta.Size
}

// TestIncrementalNeverLargerThanFull: thousands of small updates of the
// same rows make a WAL several times the database; the incremental keeps
// one frame per page and stays far below a full snapshot. Updates touching
// every page make the incremental a full snapshot instead.
func TestIncrementalNeverLargerThanFull(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.fill(3000)
	e.mustSnapshot(true)
	dbSize := e.liveDBSize()
	e.updateSameRows(2000, 64)
	walSize := e.liveWALSize()
	in := e.mustSnapshot(false)
	t.Logf("database %d bytes; WAL of 2000 updates %d bytes; incremental %d bytes", dbSize, walSize, in.Size)
	if walSize < 2*dbSize {
		t.Fatalf("test setup: WAL of %d bytes should be several times the %d-byte database", walSize, dbSize)
	}
	if in.Kind != KindIncremental || in.Size > dbSize/10 {
		t.Fatalf("incremental %+v for a %d-byte database", in, dbSize)
	}
	if got := e.restoredChecksum(in.ID); got != e.sums[in.Index] {
		t.Fatalf("compacted incremental restores to %s, want %s", got, e.sums[in.Index])
	}
	// Most pages rewritten: an incremental would be at least half a full
	// snapshot, so a full one is taken.
	e.exec("UPDATE u SET v = randomblob(1000) WHERE id % 3 = 0")
	whole := e.mustSnapshot(false)
	if whole.Kind != KindFull || whole.Size > e.liveDBSize() {
		t.Fatalf("after rewriting every page: %+v (database %d bytes)", whole, e.liveDBSize())
	}
	if got := e.restoredChecksum(whole.ID); got != e.sums[whole.Index] {
		t.Fatalf("full snapshot restores to %s, want %s", got, e.sums[whole.Index])
	}
	next := e.mustSnapshot(false)
	if next.Kind != KindIncremental {
		t.Fatalf("snapshot after the forced full one is %v", next.Kind)
	}
}

// TestInstallStreamSizedLikeDatabase: a chain whose files add up to
// several times the database is sent as one consolidated image; a chain
// barely larger than the database is sent as it is. Either way the stream
// restores the snapshot, its length is what List and Open announce, and
// the image is gone once the stream is closed.
func TestInstallStreamSizedLikeDatabase(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.fill(3000)
	e.mustSnapshot(true)
	var head Info
	var chainBytes int64
	for i := 0; i < 6; i++ {
		// each rewrites about a third of the pages, a hundred times
		for j := 0; j < 100; j++ {
			e.exec(fmt.Sprintf("UPDATE u SET n = n + 1 WHERE id %% 13 = %d", i))
		}
		head = e.mustSnapshot(false)
		chainBytes += head.Size
	}
	dbSize := e.liveDBSize()
	for _, in := range e.store.Stats().Snapshots {
		if in.Kind == KindIncremental && in.Size >= dbSize/2 {
			t.Fatalf("incremental %+v not below half the %d-byte database", in, dbSize)
		}
	}
	n, announced := e.streamBytes(head.ID)
	t.Logf("database %d bytes; chain of 7 snapshots, incrementals %d bytes; install stream %d bytes", dbSize, chainBytes, n)
	if chainBytes < dbSize {
		t.Fatalf("test setup: incrementals of %d bytes should be several times the %d-byte database", chainBytes, dbSize)
	}
	if limit := dbSize + dbSize/10 + 4096; n > limit || n != announced || n != listedSize(t, e.store, head.ID) {
		t.Fatalf("stream of %d bytes (Open said %d, List %d) for a %d-byte database", n, announced,
			listedSize(t, e.store, head.ID), dbSize)
	}
	if got := e.restoredChecksum(head.ID); got != e.sums[head.Index] {
		t.Fatalf("image restores to %s, want %s", got, e.sums[head.Index])
	}
	if left := tmpFiles(t, e.store); len(left) != 0 {
		t.Fatalf("left in tmp/ after the streams closed: %v", left)
	}
	// One more small incremental: the chain as it is stays within 10% of the database.
	if err := e.store.Consolidate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.updateSameRows(10, 10)
	small := e.mustSnapshot(false)
	n, _ = e.streamBytes(small.ID)
	if want := listedSize(t, e.store, small.ID); n != want || n < dbSize {
		t.Fatalf("stream of %d bytes, listed %d", n, want)
	}
	if got := e.restoredChecksum(small.ID); got != e.sums[small.Index] {
		t.Fatalf("chain restores to %s, want %s", got, e.sums[small.Index])
	}
}

// TestImageStreamHoldsChainLease: while a consolidated image is streamed,
// its lease covers the chain too (consolidation waits, as for any stream),
// and closing the stream lets consolidation run and removes the image.
func TestImageStreamHoldsChainLease(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.fill(1000)
	e.mustSnapshot(true)
	var head Info
	for i := 0; i < 4; i++ {
		e.updateSameRows(200, 600)
		head = e.mustSnapshot(false)
	}
	_, rc, err := e.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, rc, 1000); err != nil {
		t.Fatal(err)
	}
	if len(tmpFiles(t, e.store)) != 1 {
		t.Fatalf("want one image in tmp/ during the stream, have %v", tmpFiles(t, e.store))
	}
	consolidated := done(func() error { return e.store.Consolidate(context.Background()) })
	if !waitFor(30*time.Second, func() bool { return e.store.Stats().LeaseWaits > 0 }) {
		t.Fatal("consolidation did not wait for the image stream's lease")
	}
	rc.Close()
	select {
	case err := <-consolidated:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("consolidation still waiting after the stream closed")
	}
	if left := tmpFiles(t, e.store); len(left) != 0 {
		t.Fatalf("left in tmp/: %v", left)
	}
	if got := e.restoredChecksum(head.ID); got != e.sums[head.Index] {
		t.Fatalf("consolidated snapshot restores to %s, want %s", got, e.sums[head.Index])
	}
}

func listedSize(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	metas, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		if m.ID == id {
			return m.Size
		}
	}
	t.Fatalf("snapshot %s not listed", id)
	return 0
}

func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	return out
}
