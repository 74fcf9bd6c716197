package sqlitedb

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

func openWALTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(tempDir(t), "db.sqlite"), Options{AutoCheckpoint: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func walSize(t *testing.T, db *DB) int64 {
	t.Helper()
	fi, err := os.Stat(db.WALPath())
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCheckpointTruncatesWAL(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1)"))
	if walSize(t, db) == 0 {
		t.Fatal("expected frames in the WAL with autocheckpoint off")
	}
	res, err := db.Checkpoint(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete() {
		t.Fatalf("checkpoint incomplete: %+v", res)
	}
}

func TestCheckpointIncompleteWithLongReader(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1)"))
	// A reader that holds a read transaction on the current WAL content.
	c, err := (&sqlite3.SQLiteDriver{}).Open(db.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := c.(*sqlite3.SQLiteConn)
	if _, err := sc.Exec("BEGIN", nil); err != nil {
		t.Fatal(err)
	}
	rows, err := sc.Query("SELECT count(*) FROM t", nil)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	write(t, db, 2, time.Now(), 1, stmt("INSERT INTO t VALUES(2)"))
	start := time.Now()
	res, err := db.Checkpoint(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete() {
		t.Fatalf("checkpoint complete despite a reader: %+v", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("checkpoint waited %v, busy timeout not applied", d)
	}
	if _, err := sc.Exec("COMMIT", nil); err != nil {
		t.Fatal(err)
	}
	res, err = db.Checkpoint(time.Second)
	if err != nil || !res.Complete() {
		t.Fatalf("second checkpoint: %+v %v", res, err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointFileAppliesCapturedWAL is the incremental snapshot in small:
// a copy of the base file plus a copy of the WAL frames written since gives
// the live content.
func TestCheckpointFileAppliesCapturedWAL(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(1)"))
	if res, err := db.Checkpoint(time.Second); err != nil || !res.Complete() {
		t.Fatalf("%+v %v", res, err)
	}
	dir := tempDir(t)
	base := filepath.Join(dir, "copy.db")
	copyFile(t, db.Path(), base)
	write(t, db, 2, time.Now(), 1, stmt("INSERT INTO t VALUES(2)"), stmt("CREATE TABLE u(y)"))
	copyFile(t, db.WALPath(), base+"-wal")
	if err := CheckpointFile(base); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("WAL left behind: %v", err)
	}
	other, err := Open(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	p1, s1, err := db.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p2, s2, err := other.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || s1 != s2 {
		t.Fatalf("copy differs: %v %s vs %v %s", p1, s1, p2, s2)
	}
}

func TestCheckpointFileRefusesEmptyBase(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+"-wal", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckpointFile(p); err == nil {
		t.Fatal("expected an error")
	}
}
