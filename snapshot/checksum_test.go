package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileEntrySums: an entry is verified with the algorithm whose sum it
// records (CRC-32C, or sha256 for an older version's), and a wrong byte or
// a wrong size fails with ErrChecksum.
func TestFileEntrySums(t *testing.T) {
	data := []byte("some snapshot bytes")
	hw := newHashingWriter(nil)
	hw.h.Write(data)
	hw.n = int64(len(data))
	crc := hw.entry("db")
	if len(crc.CRC32C) != crc32cHexLen || crc.SHA256 != "" || !crc.wellFormedSum() {
		t.Fatalf("new entry %+v", crc)
	}
	sum := sha256.Sum256(data)
	old := fileEntry{Name: "db", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	for _, e := range []fileEntry{crc, old} {
		h := e.newSum()
		h.Write(data)
		if err := e.verifySum("f", h); err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		h = e.newSum()
		h.Write(append([]byte{'S'}, data[1:]...))
		if err := e.verifySum("f", h); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%+v, one byte changed: %v", e, err)
		}
	}
	for _, bad := range []fileEntry{{}, {CRC32C: "00"}, {SHA256: "00"}, {CRC32C: crc.CRC32C, SHA256: old.SHA256}} {
		if bad.wellFormedSum() {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

// TestSHA256SnapshotsStillRead: snapshots whose meta.json records sha256
// (as versions before CRC-32C wrote them) still stream, install by pull and
// back up, verified against their sha256; a byte changed in such a file is
// still refused.
func TestSHA256SnapshotsStillRead(t *testing.T) {
	pp := newPullPair(t, Options{}, Options{})
	head := pp.leaderChain("chain")
	pp.leader.store.Close()
	rewriteAsSHA256(t, filepath.Join(pp.leader.dir, "snapshots", "snapshots"))
	pp.leader.openStore()
	if got := inlineChecksum(t, pp.leader, head.ID); got != pp.leader.sums[head.Index] {
		t.Fatal("inline stream of a sha256 snapshot differs")
	}
	pp.install(head.ID)
	if pp.follower.checksum() != pp.leader.sums[head.Index] {
		t.Fatal("follower differs from the leader's sha256 snapshot")
	}
	var base string
	for _, in := range pp.leader.store.Stats().Snapshots {
		if in.Kind == KindFull {
			base = filepath.Join(pp.leader.dir, "snapshots", "snapshots", in.ID, "db")
		}
	}
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(base, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, rc, err := pp.leader.store.OpenContext(context.Background(), "test", head.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(rc, tempDir(t)); !errors.Is(err, ErrChecksum) {
		t.Fatalf("restore of a corrupt sha256 snapshot: %v", err)
	}
}

// rewriteAsSHA256 rewrites the meta.json of every snapshot under dir to
// record each file's sha256 instead of its CRC-32C.
func rewriteAsSHA256(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		path := filepath.Join(dir, en.Name(), "meta.json")
		js, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m snapMeta
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		for i, f := range m.Files {
			data, err := os.ReadFile(filepath.Join(dir, en.Name(), f.Name))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			m.Files[i].CRC32C, m.Files[i].SHA256 = "", hex.EncodeToString(sum[:])
		}
		if js, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
