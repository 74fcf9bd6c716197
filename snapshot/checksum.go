package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
)

// Checksums of data files (see DESIGN.md, "The stream and checksums").
// Every file the store writes records its CRC-32C (Castagnoli): the CPU
// computes it in hardware at many GB/s, where sha256 cost 0.6 s of CPU per
// GiB on each side of an install, about a third of both processes' CPU. A
// checksum here detects corruption (a bad disk, a torn copy, a bug), not
// tampering: no one who can write the files is kept out by any digest
// recorded next to them. Snapshots written before recorded sha256, and
// are still verified against it: an entry is checked with the algorithm
// whose sum it records.

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cHexLen is the length of a hex CRC-32C.
const crc32cHexLen = 2 * crc32.Size

// newSum returns a hash of the algorithm e's recorded checksum uses:
// CRC-32C, or sha256 for an entry an older version recorded.
func (e fileEntry) newSum() hash.Hash {
	if e.CRC32C == "" && e.SHA256 != "" {
		return sha256.New()
	}
	return crc32.New(castagnoli)
}

// withSum returns e with its checksum set to what sum (from e.newSum)
// computed, in the field of sum's algorithm.
func (e fileEntry) withSum(sum hash.Hash) fileEntry {
	s := hex.EncodeToString(sum.Sum(nil))
	e.CRC32C, e.SHA256 = "", ""
	if sum.Size() == sha256.Size {
		e.SHA256 = s
	} else {
		e.CRC32C = s
	}
	return e
}

// checksum is e's recorded checksum, named by its algorithm (for messages).
func (e fileEntry) checksum() string {
	if e.CRC32C == "" && e.SHA256 != "" {
		return "sha256 " + e.SHA256
	}
	return "crc32c " + e.CRC32C
}

// sameContent reports whether got (size and checksum computed from a
// file) matches what e records.
func (e fileEntry) sameContent(got fileEntry) bool {
	return got.Size == e.Size && got.CRC32C == e.CRC32C && got.SHA256 == e.SHA256
}

// verifySum checks that sum (from e.newSum, fed the whole file) matches
// e's recorded checksum; path names the file in the error.
func (e fileEntry) verifySum(path string, sum hash.Hash) error {
	if got := e.withSum(sum); !e.sameContent(got) {
		return fmt.Errorf("snapshot file %s: %w (%s, want %s)", path, ErrChecksum, got.checksum(), e.checksum())
	}
	return nil
}

// wellFormedSum reports whether e records exactly one checksum, of the
// right length.
func (e fileEntry) wellFormedSum() bool {
	switch {
	case e.CRC32C != "" && e.SHA256 != "":
		return false
	case e.CRC32C != "":
		return len(e.CRC32C) == crc32cHexLen
	default:
		return len(e.SHA256) == 2*sha256.Size
	}
}
