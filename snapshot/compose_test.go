package snapshot

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// chainFiles writes a chain as a snapshot holds one, with SQLite itself:
// the base database after a checkpoint, then each batch of transactions as
// the WAL it left, checkpointed away before the next batch (a capture does
// the same with the live database).
type chainFiles struct {
	t     *testing.T
	dir   string
	db    *sql.DB
	live  string
	chain []source
}

func newChainFiles(t *testing.T, pageSize int, setup ...string) *chainFiles {
	t.Helper()
	c := &chainFiles{t: t, dir: tempDir(t)}
	c.live = filepath.Join(c.dir, "live.db")
	db, err := sql.Open("sqlite3", "file:"+c.live)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	c.db = db
	c.exec(fmt.Sprintf("PRAGMA page_size=%d", pageSize), "PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0")
	c.exec(setup...)
	c.exec("PRAGMA wal_checkpoint(TRUNCATE)")
	c.add("db", readAll(t, c.live))
	return c
}

func (c *chainFiles) exec(stmts ...string) {
	c.t.Helper()
	for _, s := range stmts {
		if _, err := c.db.Exec(s); err != nil {
			c.t.Fatalf("%s: %v", s, err)
		}
	}
}

// wal runs stmts (each its own transaction) and adds the WAL they wrote
// to the chain, cut to keep bytes if keep >= 0.
func (c *chainFiles) wal(keep int, stmts ...string) {
	c.t.Helper()
	c.exec(stmts...)
	b := readAll(c.t, c.live+"-wal")
	if keep >= 0 {
		b = b[:keep]
	}
	c.add(fmt.Sprintf("wal-%03d", len(c.chain)), b)
	c.exec("PRAGMA wal_checkpoint(TRUNCATE)")
}

func (c *chainFiles) add(name string, b []byte) {
	c.t.Helper()
	path := filepath.Join(c.dir, "chain", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	hw := newHashingWriter(io.Discard)
	hw.Write(b)
	e := hw.entry("db")
	if name != "db" {
		e.Name = "wal"
	}
	c.chain = append(c.chain, source{path: path, entry: e})
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// composed reads the chain through composeImage (under a lease, on
// StrictFS), with reads of bufSize bytes.
func (c *chainFiles) composed(bufSize int) (_ []byte, size int64, _ error) {
	fsys := NewStrictFS()
	leases := NewLeaseManager(0, nullLogger())
	lease, err := leases.Acquire(context.Background(), "test", filepath.Join(c.dir, "chain"))
	if err != nil {
		return nil, 0, err
	}
	defer lease.Release()
	img, err := composeImage(lease, fsys, c.chain)
	if err != nil {
		return nil, 0, err
	}
	var out bytes.Buffer
	_, err = io.CopyBuffer(struct{ io.Writer }{&out}, struct{ io.Reader }{img}, make([]byte, bufSize))
	img.Close()
	if open := fsys.OpenHandles(); len(open) != 0 {
		c.t.Fatalf("files left open: %v", open)
	}
	if err == nil && int64(out.Len()) != img.Size() {
		c.t.Fatalf("image of %d bytes announced as %d", out.Len(), img.Size())
	}
	return out.Bytes(), img.Size(), err
}

// restored is the file Restore builds from the chain.
func (c *chainFiles) restored() []byte {
	c.t.Helper()
	h := streamHeader{ID: "test"}
	files := []io.Reader{}
	for _, f := range c.chain {
		h.Files = append(h.Files, f.entry)
		files = append(files, bytes.NewReader(readAll(c.t, f.path)))
	}
	hdr, err := encodeHeader(h)
	if err != nil {
		c.t.Fatal(err)
	}
	out := filepath.Join(c.dir, "out")
	os.MkdirAll(out, 0o755)
	path, err := restoreFS(OSFS{}, io.NopCloser(io.MultiReader(append([]io.Reader{bytes.NewReader(hdr)}, files...)...)), out)
	if err != nil {
		c.t.Fatal(err)
	}
	defer os.Remove(path)
	return readAll(c.t, path)
}

// TestComposedImageIsTheRestoredFile: for chains SQLite wrote (a base
// alone; inserts and updates over several WALs; a VACUUM that shrinks the
// database, then growth; a WAL that holds nothing; a WAL cut inside its
// last transaction; 512- and 65536-byte pages), the composed image is
// byte for byte the file Restore builds by checkpointing each WAL in, and
// SQLite finds it intact, whatever the size of the reads.
func TestComposedImageIsTheRestoredFile(t *testing.T) {
	rows := func(from, n int) string {
		return fmt.Sprintf(`INSERT INTO t(id, v) SELECT %d + i, randomblob(700) FROM
			(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < %d) SELECT i FROM s)`, from, n-1)
	}
	const create = "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"
	cases := map[string]func(t *testing.T) *chainFiles{
		"base only": func(t *testing.T) *chainFiles { return newChainFiles(t, 4096, create, rows(0, 300)) },
		"base and WALs": func(t *testing.T) *chainFiles {
			c := newChainFiles(t, 4096, create, rows(0, 300))
			c.wal(-1, rows(1000, 50), "UPDATE t SET v = randomblob(700) WHERE id % 7 = 0")
			c.wal(-1, "UPDATE t SET v = randomblob(50) WHERE id < 100", rows(2000, 20))
			c.wal(-1, "DELETE FROM t WHERE id % 3 = 0", "UPDATE t SET v = randomblob(900) WHERE id % 5 = 0")
			return c
		},
		"shrink then grow": func(t *testing.T) *chainFiles {
			c := newChainFiles(t, 4096, create, rows(0, 600))
			c.wal(-1, "DELETE FROM t WHERE id >= 100", "VACUUM")
			c.wal(-1, rows(5000, 30))
			c.wal(-1, "DELETE FROM t WHERE id >= 50", "VACUUM")
			return c
		},
		"empty and cut WALs": func(t *testing.T) *chainFiles {
			c := newChainFiles(t, 4096, create, rows(0, 200))
			c.wal(-1) // nothing written: an empty file
			c.wal(-1, rows(1000, 40), "UPDATE t SET v = randomblob(10) WHERE id < 20")
			// A WAL that is only a header (the previous one's).
			c.add("wal-header", readAll(t, c.chain[len(c.chain)-1].path)[:walHeaderSize])
			// The last WAL torn inside its second transaction: the first
			// counts, the second does not (later WALs would build on it).
			c.wal(32+30*(24+4096)+1000, "UPDATE t SET v = randomblob(20) WHERE id < 30", rows(3000, 300))
			return c
		},
		"512-byte pages": func(t *testing.T) *chainFiles {
			c := newChainFiles(t, 512, create, rows(0, 100))
			c.wal(-1, rows(500, 20), "DELETE FROM t WHERE id % 2 = 0")
			return c
		},
		"65536-byte pages": func(t *testing.T) *chainFiles {
			c := newChainFiles(t, 65536, create, rows(0, 300))
			c.wal(-1, rows(500, 20), "UPDATE t SET v = randomblob(10) WHERE id % 9 = 0")
			return c
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			c := build(t)
			want := c.restored()
			for _, bufSize := range []int{1 << 20, 7 << 10, 100} {
				got, _, err := c.composed(bufSize)
				if err != nil {
					t.Fatalf("reads of %d bytes: %v", bufSize, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("reads of %d bytes: image of %d bytes differs from the restored file of %d", bufSize, len(got), len(want))
				}
			}
			checkIntegrity(t, want, c.dir)
		})
	}
}

// checkIntegrity writes b as a database file and runs PRAGMA
// integrity_check on it.
func checkIntegrity(t *testing.T, b []byte, dir string) {
	t.Helper()
	path := filepath.Join(dir, "check.db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	defer removeSQLiteFiles(OSFS{}, path)
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q, %v", res, err)
	}
}

// TestComposedImageRefusesCorruptFiles: a byte changed in the base or in a
// WAL fails the read with ErrChecksum; a WAL's before anything is read, the
// base's before the image's last bytes are handed out.
func TestComposedImageRefusesCorruptFiles(t *testing.T) {
	for _, which := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("file %d", which), func(t *testing.T) {
			c := newChainFiles(t, 4096, "CREATE TABLE t(v)", "INSERT INTO t SELECT randomblob(1000) FROM (WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < 999) SELECT i FROM s)")
			c.wal(-1, "INSERT INTO t VALUES(randomblob(5000))")
			c.wal(-1, "UPDATE t SET v = x'00' WHERE rowid = 3")
			path := c.chain[which].path
			b := readAll(t, path)
			b[len(b)/2] ^= 0x40
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got, size, err := c.composed(64 << 10)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("read of a chain with a corrupt file %d: %v", which, err)
			}
			if which == 0 && int64(len(got)) >= size || which > 0 && len(got) > 0 {
				t.Fatalf("%d bytes handed out before the corrupt file %d was refused", len(got), which)
			}
		})
	}
}
