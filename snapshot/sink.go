package snapshot

import (
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
// Nothing becomes visible in the store until Close succeeds.
type Sink struct {
	s    *Store
	meta snapMeta
	dir  string

	mu       sync.Mutex
	pw       *asyncPipe
	done     chan recvResult
	adopted  bool
	installs uint64 // adopted: the store's install count at capture
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
func (s *Store) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version < raft.SnapshotVersionMin || version > raft.SnapshotVersionMax {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	id, dir, err := s.newSinkDir(term, index)
	if err != nil {
		return nil, err
	}
	return &Sink{s: s, dir: dir, meta: snapMeta{SnapshotMeta: raft.SnapshotMeta{Version: version, ID: id, Index: index,
		Term: term, Configuration: configuration, ConfigurationIndex: configurationIndex}}}, nil
}

// newSinkDir picks an unused id, term-index-unixmillis as in Raft's file
// store, and creates its directory under tmp/.
func (s *Store) newSinkDir(term, index uint64) (string, string, error) {
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	for ms := time.Now().UnixMilli(); ; ms++ {
		id := fmt.Sprintf("%d-%d-%d", term, index, ms)
		dir := filepath.Join(s.tmpDir(), id)
		inTmp, err := s.exists(dir)
		if err != nil {
			return "", "", err
		}
		stored, err := s.exists(s.snapDir(id))
		if err != nil {
			return "", "", err
		}
		if !inTmp && !stored {
			return id, dir, s.fs.MkdirAll(dir, 0o755)
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
		k.pw, k.done = pw, make(chan recvResult, 1)
		go func() {
			res, err := k.s.receive(pw, k.dir)
			pw.stopReading(err)
			res.err = err
			k.done <- res
		}()
	}
	pw := k.pw
	k.mu.Unlock()
	if k.s.opts.OnReceive != nil {
		k.s.opts.OnReceive(len(p))
	}
	return pw.Write(p)
}

// receive parses a stream into files in dir, verifying each.
func (s *Store) receive(r io.Reader, dir string) (recvResult, error) {
	h, err := readHeader(r)
	if err != nil {
		return recvResult{}, err
	}
	buf := make([]byte, 1<<20)
	var files []fileEntry
	for i, e := range h.Files {
		name := "db"
		if i > 0 {
			name = fmt.Sprintf("wal-%03d", i)
		}
		if err := writeVerified(s.fs, r, filepath.Join(dir, name), e, buf, true); err != nil {
			return recvResult{}, err
		}
		e.Name = name
		files = append(files, e)
	}
	if n, _ := r.Read(buf[:1]); n != 0 {
		return recvResult{}, fmt.Errorf("%w: trailing bytes after the last file", ErrFormat)
	}
	dbSize := h.DBSize
	if len(files) == 1 {
		dbSize = files[0].Size
	}
	return recvResult{files: files, dbSize: dbSize}, nil
}

// adopt records that Persist placed the files in the sink's directory.
func (k *Sink) adopt(kind Kind, parent string, files []fileEntry, dbSize int64, installs uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.adopted, k.installs = true, installs
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
		if res.err != nil {
			return errors.Join(fmt.Errorf("snapshot %s: receive: %w", k.meta.ID, res.err), k.discard())
		}
		k.meta.Kind, k.meta.Parent, k.meta.Files, k.meta.DBSize = KindFull, "", res.files, res.dbSize
		// The live database does not hold this content until the FSM's
		// Restore replaces it: no incremental may build on it before then.
		k.s.mu.Lock()
		k.s.requireFullLocked("snapshot received from another node")
		k.s.mu.Unlock()
	case !adopted:
		return errors.Join(fmt.Errorf("snapshot %s: closed with no data", k.meta.ID), k.discard())
	}
	if err := k.s.finalize(k.dir, &k.meta, pw != nil, k.installs); err != nil {
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
	pw, done := k.pw, k.done
	k.mu.Unlock()
	if already {
		return nil
	}
	if pw != nil {
		pw.Close(errors.New("snapshot sink cancelled"))
		<-done
	}
	return k.discard()
}

func (k *Sink) discard() error { return k.s.fs.RemoveAll(k.dir) }

// finalize moves a completed snapshot from tmp into the store and makes it
// the head. A received snapshot supersedes every capture not yet
// persisted; a captured one (installs: the store's count at capture) fails
// with ErrSuperseded if a snapshot was received or installed since.
func (s *Store) finalize(dir string, m *snapMeta, received bool, installs uint64) error {
	if err := s.step("persist.data"); err != nil {
		return err
	}
	if err := s.writeMeta(dir, m); err != nil {
		return err
	}
	if err := s.step("persist.meta"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !received {
		if err := s.checkCurrentLocked(installs); err != nil {
			return err
		}
	}
	if m.Kind == KindIncremental && m.Parent != s.head {
		s.requireFullLocked("chain changed while persisting")
		return fmt.Errorf("snapshot %s: parent %s is no longer the latest snapshot (%s)", m.ID, m.Parent, s.head)
	}
	if err := s.fs.Rename(dir, s.snapDir(m.ID)); err != nil {
		return err
	}
	if err := s.fs.SyncDir(filepath.Dir(s.snapDir(m.ID))); err != nil {
		return err
	}
	if err := s.step("persist.renamed"); err != nil {
		return err
	}
	if received {
		s.installs++
	}
	s.snaps[m.ID] = m
	s.head = m.ID
	s.lastIdx = m.Index
	s.created++
	s.log.Debug("snapshot stored", "id", m.ID, "kind", m.Kind, "files", len(m.Files))
	s.wakeJanitor()
	return nil
}

func (s *Store) wakeJanitor() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
