package snapshot

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// TestWALScanStopsWhereSQLiteDoes: frames after the last commit, a torn
// frame and a frame of an older WAL generation (wrong salt) are not part of
// the WAL for SQLite, nor for scanWAL; the compacted WAL of what remains
// checkpoints into the same database as the original.
func TestWALScanStopsWhereSQLiteDoes(t *testing.T) {
	e := newEnv(t, Options{})
	e.fill(200)
	e.mustSnapshot(true)
	base := filepath.Join(e.dir, "base.db")
	copyFile(t, e.db.Path(), base)
	e.updateSameRows(300, 20)
	wal, err := os.ReadFile(e.db.WALPath())
	if err != nil {
		t.Fatal(err)
	}
	want := e.checksum()
	clean, err := scanWAL(bytes.NewReader(wal))
	if err != nil || clean.empty() || clean.frames*(walFrameHeaderSize+clean.pageSize)+walHeaderSize != int64(len(wal)) {
		t.Fatalf("scan of the live WAL: %+v, %v", clean, err)
	}
	frame := walFrameHeaderSize + int(clean.pageSize)
	last := wal[len(wal)-frame:]
	// A well-formed frame (salts and checksum chain right) of a transaction
	// that never committed.
	uncommitted := append([]byte(nil), last...)
	binary.BigEndian.PutUint32(uncommitted[4:], 0)
	sum := [2]uint32{binary.BigEndian.Uint32(last[16:]), binary.BigEndian.Uint32(last[20:])}
	sum = walChecksum(clean.bigEndian, sum, uncommitted[:8])
	sum = walChecksum(clean.bigEndian, sum, uncommitted[walFrameHeaderSize:])
	binary.BigEndian.PutUint32(uncommitted[16:], sum[0])
	binary.BigEndian.PutUint32(uncommitted[20:], sum[1])
	// The same frame as a commit is accepted: the checksums above are right.
	committed := append([]byte(nil), uncommitted...)
	binary.BigEndian.PutUint32(committed[4:], clean.dbPages)
	sum = [2]uint32{binary.BigEndian.Uint32(last[16:]), binary.BigEndian.Uint32(last[20:])}
	sum = walChecksum(clean.bigEndian, sum, committed[:8])
	sum = walChecksum(clean.bigEndian, sum, committed[walFrameHeaderSize:])
	binary.BigEndian.PutUint32(committed[16:], sum[0])
	binary.BigEndian.PutUint32(committed[20:], sum[1])
	if got, err := scanWAL(bytes.NewReader(append(append([]byte(nil), wal...), committed...))); err != nil || got.frames != clean.frames+1 {
		t.Fatalf("a valid commit frame appended: %d frames, want %d (%v)", got.frames, clean.frames+1, err)
	}
	stale := append([]byte(nil), last...)
	stale[8] ^= 0xff // another generation's salt
	for name, tail := range map[string][]byte{"torn": last[:frame/2], "uncommitted": uncommitted, "stale": stale} {
		got, err := scanWAL(bytes.NewReader(append(append([]byte(nil), wal...), tail...)))
		if err != nil || got.frames != clean.frames || got.dbPages != clean.dbPages || len(got.lastFrame) != len(clean.lastFrame) {
			t.Fatalf("%s tail: scanned %d frames, %d pages; want %d, %d", name, got.frames, got.dbPages, clean.frames, clean.dbPages)
		}
	}
	var compact bytes.Buffer
	if err := writeCompactWAL(&compact, bytes.NewReader(wal), clean); err != nil {
		t.Fatal(err)
	}
	if int64(compact.Len()) != clean.compactBytes() || compact.Len()*5 > len(wal) {
		t.Fatalf("compacted %d bytes (expected %d) from %d", compact.Len(), clean.compactBytes(), len(wal))
	}
	if err := os.WriteFile(base+"-wal", compact.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.CheckpointFile(base); err != nil {
		t.Fatal(err)
	}
	if got := checksumOfFile(t, base); got != want {
		t.Fatalf("compacted WAL checkpoints to %s, want %s", got, want)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func checksumOfFile(t *testing.T, path string) string {
	t.Helper()
	db, err := sqlitedb.Open(path, sqlitedb.Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, sum, err := db.Checksum(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
