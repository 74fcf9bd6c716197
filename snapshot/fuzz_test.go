package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// FuzzStream feeds arbitrary bytes to both readers of the snapshot stream
// format: Restore, which a node installing a snapshot runs, and
// Catalog.receive, which a sink runs on the stream a leader sends.
// Properties:
//
//   - neither panics, and neither allocates more than a fixed bound plus a
//     small multiple of the input: no length or size read from the stream
//     sizes an allocation beyond the format's own limits;
//   - each accepts exactly the well-formed streams (wellFormed, a separate
//     reading of the format: the magic, a header within its bound with the
//     database first, then files whose sizes and sha256 match, and nothing
//     after them); on any error Restore leaves no file behind;
//   - a stream the encoder built round-trips: what Restore yields has the
//     content (checksum) of the database the snapshot was taken from.
func FuzzStream(f *testing.F) {
	seeds := newStreamSeeds(f)
	for _, s := range seeds.streams {
		f.Add(s)
	}
	dir := tempDir(f)
	restoreDir, recvDir := filepath.Join(dir, "restore"), filepath.Join(dir, "recv")
	if err := os.MkdirAll(restoreDir, 0o755); err != nil {
		f.Fatal(err)
	}
	cat := &Catalog{fs: noSyncFS{}}
	f.Fuzz(func(t *testing.T, data []byte) {
		files, ok := wellFormed(data)
		allocBounded(t, "Restore", len(data), func() { checkRestore(t, seeds, restoreDir, data, files, ok) })
		allocBounded(t, "receive", len(data), func() { checkReceive(t, cat, recvDir, data, files, ok) })
	})
}

// allocBounded runs fn and fails if it allocated more than the 1 MiB copy
// buffer and the 1 MiB header bound allow, beyond 64 bytes per input byte.
func allocBounded(t *testing.T, what string, n int, fn func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if got, bound := after.TotalAlloc-before.TotalAlloc, uint64(4<<20+64*n); got > bound {
		t.Fatalf("%s allocated %d bytes for %d bytes of input (bound %d)", what, got, n, bound)
	}
}

// checkRestore restores data into dir and checks the outcome against
// wellFormed's verdict (ok, and the files it found).
func checkRestore(t *testing.T, seeds *streamSeeds, dir string, data []byte, files [][]byte, ok bool) {
	path, err := restoreFS(noSyncFS{}, io.NopCloser(bytes.NewReader(data)), dir)
	switch {
	case err != nil && ok && len(files) == 1:
		t.Fatalf("Restore refused a well-formed stream: %v", err)
	case err == nil && !ok:
		t.Fatalf("Restore accepted a malformed stream")
	case err == nil:
		if len(files) == 1 {
			got, rerr := os.ReadFile(path)
			if rerr != nil || !bytes.Equal(got, files[0]) {
				t.Fatalf("restored database differs from the stream's (%v)", rerr)
			}
		}
		if want, known := seeds.sums[fileKey(files)]; known {
			if got := databaseChecksum(t, path); got != want {
				t.Fatalf("restored checksum %s, want %s", got, want)
			}
		}
		removeSQLiteFiles(OSFS{}, path)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Fatalf("Restore (error %v) left %s behind", err, left[0].Name())
	}
}

// checkReceive receives data into dir, checks the outcome against
// wellFormed's verdict, and empties dir.
func checkReceive(t *testing.T, cat *Catalog, dir string, data []byte, files [][]byte, ok bool) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer OSFS{}.RemoveAll(dir)
	res, err := cat.receive(context.Background(), bytes.NewReader(data), dir)
	switch {
	case err != nil && ok:
		t.Fatalf("receive refused a well-formed stream: %v", err)
	case err == nil && !ok:
		t.Fatalf("receive accepted a malformed stream")
	case err == nil:
		if len(res.files) != len(files) {
			t.Fatalf("received %d files, the stream holds %d", len(res.files), len(files))
		}
		for i, e := range res.files {
			got, rerr := os.ReadFile(filepath.Join(dir, e.Name))
			if rerr != nil || !bytes.Equal(got, files[i]) {
				t.Fatalf("received file %s differs from the stream's (%v)", e.Name, rerr)
			}
		}
	}
}

// wellFormed reads data as the stream format describes it (format.go),
// without the decoder's code, and returns the files' contents and whether
// the stream is well formed.
func wellFormed(data []byte) ([][]byte, bool) {
	if len(data) < len(streamMagic)+4 || string(data[:len(streamMagic)]) != streamMagic {
		return nil, false
	}
	n := binary.BigEndian.Uint32(data[len(streamMagic):])
	rest := data[len(streamMagic)+4:]
	if n > maxHeaderBytes || int(n) > len(rest) {
		return nil, false
	}
	var h streamHeader
	if json.Unmarshal(rest[:n], &h) != nil || len(h.Files) == 0 || h.Files[0].Name != "db" {
		return nil, false
	}
	rest = rest[n:]
	var files [][]byte
	for _, e := range h.Files {
		if e.Size < 0 || e.Size > int64(len(rest)) {
			return nil, false
		}
		if !sumMatches(e, rest[:e.Size]) {
			return nil, false
		}
		files, rest = append(files, rest[:e.Size]), rest[e.Size:]
	}
	return files, len(rest) == 0
}

// sumMatches checks data against e's one checksum, computed here with the
// standard library rather than the package's code.
func sumMatches(e fileEntry, data []byte) bool {
	switch {
	case e.CRC32C != "" && e.SHA256 == "":
		return fmt.Sprintf("%08x", crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) == e.CRC32C
	case e.SHA256 != "" && e.CRC32C == "":
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:]) == e.SHA256
	}
	return false
}

// fileKey identifies a stream's content by its files' digests.
func fileKey(files [][]byte) string {
	var b strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f)
		b.WriteString(hex.EncodeToString(sum[:]))
	}
	return b.String()
}

func databaseChecksum(t *testing.T, path string) string {
	db, err := sqlitedb.Open(path, sqlitedb.Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, sum, err := db.Checksum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// noSyncFS is OSFS without fsync, which costs milliseconds and proves
// nothing here.
type noSyncFS struct{ OSFS }

// Create creates name; its Sync does nothing.
func (noSyncFS) Create(name string) (File, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

// SyncDir does nothing.
func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ *os.File }

// Sync does nothing.
func (noSyncFile) Sync() error { return nil }

// streamSeeds are the inputs FuzzStream starts from, and the checksum of
// the database each well-formed one restores to, by fileKey.
type streamSeeds struct {
	streams [][]byte
	sums    map[string]string
}

// newStreamSeeds builds well-formed streams the way a store does, one of a
// full snapshot and one of a chain (the database and a WAL to checkpoint
// into it), on a database with 512-byte pages to keep them small, and
// malformed variants of them.
func newStreamSeeds(f *testing.F) *streamSeeds {
	e := &env{t: f, dir: tempDir(f), sums: map[uint64]string{}}
	path := filepath.Join(e.dir, "live.db")
	smallPages(f, path)
	db, err := sqlitedb.Open(path, sqlitedb.Options{AutoCheckpoint: -1})
	if err != nil {
		f.Fatal(err)
	}
	e.db = db
	f.Cleanup(func() { db.Close() })
	e.opts = Options{Logger: nullLogger()}
	e.openStore()
	e.write(3, 50)
	full := e.mustSnapshot(true)
	e.write(1, 10)
	incr := e.mustSnapshot(false)
	s := &streamSeeds{sums: map[string]string{}}
	for _, in := range []Info{full, incr} {
		data := chainStream(f, e, in.ID)
		files, ok := wellFormed(data)
		if !ok {
			f.Fatalf("snapshot %s: the encoder's stream is not well formed", in.ID)
		}
		s.sums[fileKey(files)] = e.sums[in.Index]
		s.streams = append(s.streams, data)
	}
	if files, _ := wellFormed(s.streams[1]); len(files) < 2 {
		f.Fatalf("the incremental snapshot's stream holds %d files, want a chain", len(files))
	}
	s.streams = append(s.streams, malformed(f, s.streams[1])...)
	return s
}

// smallPages creates the database at path with 512-byte pages.
func smallPages(f *testing.F, path string) {
	c, err := (&sqlite3.SQLiteDriver{}).Open(path)
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	for _, sql := range []string{"PRAGMA page_size=512", "VACUUM"} {
		if _, err := c.(*sqlite3.SQLiteConn).Exec(sql, nil); err != nil {
			f.Fatal(err)
		}
	}
}

// chainStream encodes snapshot id's chain as a stream, as Open does when it
// sends the chain's files rather than an image of them.
func chainStream(f *testing.F, e *env, id string) []byte {
	c := e.store.catalog
	c.mu.Lock()
	m, src, _, err := c.resolveLocked(id)
	c.mu.Unlock()
	if err != nil {
		f.Fatal(err)
	}
	out, err := encodeHeader(streamHeaderFor(m, src))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range src {
		b, err := os.ReadFile(s.path)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// malformed returns variants of the well-formed stream good: cut short,
// followed by more, with a byte of a file changed, a wrong magic, header
// lengths past the bound and past the data, and headers with bad entries.
func malformed(f *testing.F, good []byte) [][]byte {
	files, _ := wellFormed(good)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	out := [][]byte{
		nil,
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		flipped,
		append([]byte("SQRSNAP2"), good[len(streamMagic):]...),
		append([]byte(streamMagic), 0xff, 0xff, 0xff, 0xff),
		append([]byte(streamMagic), 0, 0x10, 0, 0, '{'),
	}
	db := sha256.Sum256(files[0])
	dbCRC := fmt.Sprintf("%08x", crc32.Checksum(files[0], crc32.MakeTable(crc32.Castagnoli)))
	for _, h := range []streamHeader{
		{},
		{Files: []fileEntry{{Name: "db", Size: int64(len(files[0])), CRC32C: dbCRC, SHA256: hex.EncodeToString(db[:])}}},
		{Files: []fileEntry{{Name: "db", Size: int64(len(files[0])), CRC32C: "00"}}},
		{Files: []fileEntry{{Name: "db", Size: int64(len(files[0]))}}},
		{Files: []fileEntry{{Name: "wal", Size: int64(len(files[0])), SHA256: hex.EncodeToString(db[:])}}},
		{Files: []fileEntry{{Name: "db", Size: -1, SHA256: hex.EncodeToString(db[:])}}},
		{Files: []fileEntry{{Name: "db", Size: 1 << 62, SHA256: hex.EncodeToString(db[:])}}},
		{Files: []fileEntry{{Name: "db", Size: int64(len(files[0])), SHA256: "00"}}},
		{Files: []fileEntry{{Name: "db", Size: int64(len(files[0])), SHA256: hex.EncodeToString(db[:])}, {Name: "wal"}}},
	} {
		b, err := encodeHeader(h)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, append(b, files[0]...))
	}
	return out
}
