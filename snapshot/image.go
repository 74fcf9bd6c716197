package snapshot

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// imageSlackDivisor sets when a stream sends the chain as it is rather than
// a consolidated image: while the chain is at most 1/imageSlackDivisor
// larger than the database (10%). Building an image costs one local copy of
// the database, which is not worth a few percent of network.
const imageSlackDivisor = 10

var imageSeq atomic.Uint64

// streamPlan is what a stream of one snapshot sends: the files of its chain
// as they are on disk, or, when that is smaller, one database image that
// Open consolidates from them into tmp/ for this stream alone.
type streamPlan struct {
	meta  *snapMeta
	chain []source // the chain's files, the database first
	dirs  []string // the chain's snapshot directories, which the lease covers
	image bool     // send a consolidated image instead of the chain
	// dbSize is the size of the database the snapshot restores to. Metas
	// written before it was recorded do not know it; the chain's base
	// database size stands in (only the choice of image or chain uses it).
	dbSize int64
}

// planStreamLocked decides how snapshot id is streamed.
func (c *Catalog) planStreamLocked(id string) (streamPlan, error) {
	m, src, dirs, err := c.resolveLocked(id)
	if err != nil {
		return streamPlan{}, err
	}
	p := streamPlan{meta: m, chain: src, dirs: dirs, dbSize: m.DBSize}
	if p.dbSize <= 0 {
		p.dbSize = src[0].entry.Size
	}
	var chainBytes int64
	for _, f := range src {
		chainBytes += f.entry.Size
	}
	p.image = len(src) > 1 && chainBytes > p.dbSize+p.dbSize/imageSlackDivisor
	return p, nil
}

// header is the stream header for files (the chain, or the built image).
func (p streamPlan) header(files []source) streamHeader {
	h := streamHeaderFor(p.meta, files)
	if p.meta.DBSize > 0 {
		h.DBSize = p.meta.DBSize
	}
	if p.image {
		h.DBSize = files[0].entry.Size
	}
	return h
}

// expectedHeader is the header the stream will have, before any image is
// built: an image is expected at dbSize, with a placeholder checksum of the
// same length as the real one. Its length is therefore exact whenever
// dbSize is (List reports it as the snapshot's Size).
func (p streamPlan) expectedHeader() streamHeader {
	if !p.image {
		return p.header(p.chain)
	}
	return p.header([]source{{entry: fileEntry{Name: "db", Size: p.dbSize, CRC32C: strings.Repeat("0", crc32cHexLen)}}})
}

// newImagePath names a consolidated image for one stream. Images live in
// tmp/, which recovery empties, and only their stream reads or removes
// them.
func (c *Catalog) newImagePath() string {
	return filepath.Join(c.tmpDir(), fmt.Sprintf("image-%d-%d.db", time.Now().UnixNano(), imageSeq.Add(1)))
}

// buildImage consolidates chain into one database file at path, reading
// every chain file through lease (so the lease must cover the chain and
// path) and checking each against its sha256 as it is copied: the base
// database is copied, then each WAL is copied next to it and checkpointed
// in, exactly as Restore does on the receiving node. On error nothing is
// left at path.
func (c *Catalog) buildImage(lease *Lease, chain []source, path string) (source, error) {
	src, err := c.buildImageFiles(lease, chain, path)
	if err != nil {
		c.removeImage(path)
		return source{}, err
	}
	return src, nil
}

func (c *Catalog) buildImageFiles(lease *Lease, chain []source, path string) (source, error) {
	if err := c.fs.MkdirAll(c.tmpDir(), 0o755); err != nil {
		return source{}, err
	}
	buf := make([]byte, 1<<20)
	for i, f := range chain {
		dst := path
		if i > 0 {
			dst = path + "-wal"
		}
		if err := c.copyLeased(lease, f, dst, buf); err != nil {
			return source{}, err
		}
		if i > 0 {
			if err := sqlitedb.CheckpointFile(path); err != nil {
				return source{}, err
			}
			lease.Touch() // a long checkpoint is not an idle reader
		}
	}
	e, err := c.hashFile(path)
	if err != nil {
		return source{}, err
	}
	e.Name = "db"
	return source{path: path, entry: e}, nil
}

// copyLeased copies one chain file to dst through lease, verifying it.
func (c *Catalog) copyLeased(lease *Lease, f source, dst string, buf []byte) error {
	rc, err := lease.Open(c.fs, f.path)
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeVerified(c.fs, rc, dst, f.entry, buf, true)
}

// removeImage removes a stream's image and whatever SQLite left next to
// it. A failure is logged (tmp/ is emptied at the next start anyway).
func (c *Catalog) removeImage(path string) {
	if err := removeSQLiteFiles(c.fs, path); err != nil {
		c.log.Warn("could not remove a stream's image", "path", path, "error", err)
	}
}
