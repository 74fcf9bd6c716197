package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Sink receives one snapshot. It is filled either by the FSM's Persist,
// which hands it the files captured from the live database (no copy
// through Write), or, on a node installing a snapshot from its leader, by
// Write with a stream in the format Open produces; its files are checked
// against their sha256 as they arrive and Close fails on any mismatch.
// Nothing becomes visible in the catalogue until Close succeeds. Its mu
// guards the fields below it.
type Sink struct {
	c    *Catalog
	meta snapMeta
	dir  string

	mu       sync.Mutex
	pw       *asyncPipe
	stopPull context.CancelFunc // ends a pull the stream's manifest started
	done     chan recvResult
	adopted  bool
	epoch    uint64 // adopted: the catalogue's epoch at capture
	finished bool
	closeErr error // outcome of the first Close
}

type recvResult struct {
	files  []fileEntry
	dbSize int64
	err    error
}

var _ raft.SnapshotSink = (*Sink)(nil)

// Create starts a new snapshot at index and term.
func (c *Catalog) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version < raft.SnapshotVersionMin || version > raft.SnapshotVersionMax {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	id, dir, err := c.newSinkDir(term, index)
	if err != nil {
		return nil, err
	}
	return &Sink{c: c, dir: dir, meta: snapMeta{SnapshotMeta: raft.SnapshotMeta{Version: version, ID: id, Index: index,
		Term: term, Configuration: configuration, ConfigurationIndex: configurationIndex}}}, nil
}

// ownSink returns sink as one of this catalogue's sinks, or false: Persist
// only fills sinks of the catalogue it captured for.
func (c *Catalog) ownSink(sink raft.SnapshotSink) (*Sink, bool) {
	k, ok := sink.(*Sink)
	return k, ok && k.c == c
}

// newSinkDir picks an unused id, term-index-unixmillis as in Raft's file
// store, and creates its directory under tmp/.
func (c *Catalog) newSinkDir(term, index uint64) (string, string, error) {
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	for ms := time.Now().UnixMilli(); ; ms++ {
		id := fmt.Sprintf("%d-%d-%d", term, index, ms)
		dir := filepath.Join(c.tmpDir(), id)
		inTmp, err := c.exists(dir)
		if err != nil {
			return "", "", err
		}
		stored, err := c.exists(c.snapDir(id))
		if err != nil {
			return "", "", err
		}
		if !inTmp && !stored {
			return id, dir, c.fs.MkdirAll(dir, 0o755)
		}
	}
}

// ID is the snapshot's id.
func (k *Sink) ID() string { return k.meta.ID }

// Write receives stream bytes (a snapshot installed from another node).
func (k *Sink) Write(p []byte) (int, error) {
	k.mu.Lock()
	if k.finished || k.adopted {
		k.mu.Unlock()
		return 0, errors.New("snapshot sink: write after close or persist")
	}
	if k.pw == nil {
		pw := newAsyncPipe()
		ctx, cancel := context.WithCancel(k.c.ctx)
		k.pw, k.done, k.stopPull = pw, make(chan recvResult, 1), cancel
		go func() {
			res, err := k.c.receive(ctx, pw, k.dir)
			pw.stopReading(err)
			res.err = err
			k.done <- res
		}()
	}
	pw := k.pw
	k.mu.Unlock()
	if k.c.onReceive != nil {
		k.c.onReceive(len(p))
	}
	return pw.Write(p)
}

// receive parses a stream into files in dir, verifying each. A stream that
// is a pull manifest has its files pulled from the node that sent it
// (pull.go); ctx ends such a pull.
func (c *Catalog) receive(ctx context.Context, r io.Reader, dir string) (recvResult, error) {
	magic, js, err := readFramed(r)
	if err != nil {
		return recvResult{}, err
	}
	if magic == pullMagic {
		return c.receivePull(ctx, r, js, dir)
	}
	h, err := decodeHeader(js)
	if err != nil {
		return recvResult{}, err
	}
	return c.receiveFiles(r, h.Files, h.DBSize, dir)
}

// receiveFiles writes the files entries describe from r into dir, verifying
// each, and fails if r holds more.
func (c *Catalog) receiveFiles(r io.Reader, entries []fileEntry, dbSize int64, dir string) (recvResult, error) {
	buf := make([]byte, 1<<20)
	var files []fileEntry
	for i, e := range entries {
		name := "db"
		if i > 0 {
			name = fmt.Sprintf("wal-%03d", i)
		}
		if err := writeVerified(c.fs, r, filepath.Join(dir, name), e, buf, true); err != nil {
			return recvResult{}, err
		}
		e.Name = name
		files = append(files, e)
	}
	if n, _ := r.Read(buf[:1]); n != 0 {
		return recvResult{}, fmt.Errorf("%w: trailing bytes after the last file", ErrFormat)
	}
	if len(files) == 1 {
		dbSize = files[0].Size
	}
	return recvResult{files: files, dbSize: dbSize}, nil
}

// adopt records that Persist placed the files in the sink's directory.
func (k *Sink) adopt(kind Kind, parent string, files []fileEntry, dbSize int64, epoch uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.adopted, k.epoch = true, epoch
	k.meta.Kind, k.meta.Parent, k.meta.Files, k.meta.DBSize = kind, parent, files, dbSize
}

// Close completes the snapshot: it checks what was received, writes its
// meta.json and moves it into the store.
func (k *Sink) Close() error {
	k.mu.Lock()
	if k.finished {
		// Raft closes the sink again after Persist closed it: report the
		// first outcome.
		err := k.closeErr
		k.mu.Unlock()
		return err
	}
	k.finished = true
	k.closeErr = errors.New("snapshot sink: closed while closing")
	pw, done, adopted := k.pw, k.done, k.adopted
	k.mu.Unlock()
	err := k.complete(pw, done, adopted)
	k.mu.Lock()
	k.closeErr = err
	k.mu.Unlock()
	return err
}

func (k *Sink) complete(pw *asyncPipe, done chan recvResult, adopted bool) error {
	switch {
	case pw != nil:
		pw.Close(nil)
		res := <-done
		k.stopPull()
		if res.err != nil {
			return errors.Join(fmt.Errorf("snapshot %s: receive: %w", k.meta.ID, res.err), k.discard())
		}
		k.meta.Kind, k.meta.Parent, k.meta.Files, k.meta.DBSize = KindFull, "", res.files, res.dbSize
		k.meta.Received = true // its files may become the live database (adopt.go)
		// The live database does not hold this content until the FSM's
		// Restore replaces it: no incremental may build on it before then.
		k.c.full.requireFull("snapshot received from another node")
	case !adopted:
		return errors.Join(fmt.Errorf("snapshot %s: closed with no data", k.meta.ID), k.discard())
	}
	if err := k.c.finalize(k.dir, &k.meta, pw != nil, k.epoch); err != nil {
		return errors.Join(err, k.discard())
	}
	return nil
}

// Cancel abandons the snapshot.
func (k *Sink) Cancel() error {
	k.mu.Lock()
	already := k.finished
	k.finished = true
	if !already {
		k.closeErr = fmt.Errorf("snapshot %s: cancelled", k.meta.ID)
	}
	pw, done, stopPull := k.pw, k.done, k.stopPull
	k.mu.Unlock()
	if already {
		return nil
	}
	if pw != nil {
		stopPull()
		pw.Close(errors.New("snapshot sink cancelled"))
		<-done
	}
	return k.discard()
}

func (k *Sink) discard() error { return k.c.fs.RemoveAll(k.dir) }

// finalize moves a completed snapshot from tmp into the catalogue and
// makes it the head. A received snapshot supersedes every capture not yet
// persisted; a captured one (epoch: the catalogue's epoch at capture) fails
// with ErrSuperseded if a snapshot was received or installed since.
func (c *Catalog) finalize(dir string, m *snapMeta, received bool, epoch uint64) error {
	if err := c.hook.at("persist.data"); err != nil {
		return err
	}
	if err := c.writeMeta(dir, m); err != nil {
		return err
	}
	if err := c.hook.at("persist.meta"); err != nil {
		return err
	}
	c.mu.Lock()
	parentMoved, err := c.commitLocked(dir, m, received, epoch)
	c.mu.Unlock()
	if parentMoved {
		c.full.requireFull("chain changed while persisting")
	}
	return err
}

// commitLocked renames a completed snapshot into place and makes it the
// head, unless it is a superseded capture or an incremental whose parent is
// no longer the head (parentMoved).
func (c *Catalog) commitLocked(dir string, m *snapMeta, received bool, epoch uint64) (parentMoved bool, err error) {
	if !received {
		if err := c.currentLocked(epoch); err != nil {
			return false, err
		}
	}
	if m.Kind == KindIncremental && m.Parent != c.head {
		return true, fmt.Errorf("snapshot %s: parent %s is no longer the latest snapshot (%s)", m.ID, m.Parent, c.head)
	}
	if err := c.fs.Rename(dir, c.snapDir(m.ID)); err != nil {
		return false, err
	}
	if err := c.fs.SyncDir(filepath.Dir(c.snapDir(m.ID))); err != nil {
		return false, err
	}
	if err := c.hook.at("persist.renamed"); err != nil {
		return false, err
	}
	if received {
		c.epoch++
	}
	c.snaps[m.ID] = m
	c.head = m.ID
	c.lastIdx = m.Index
	c.created++
	c.log.Debug("snapshot stored", "id", m.ID, "kind", m.Kind, "files", len(m.Files))
	c.wakeJanitor()
	return false, nil
}

func (c *Catalog) wakeJanitor() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
