package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// snapMeta is a snapshot's meta.json.
type snapMeta struct {
	raft.SnapshotMeta
	Kind   Kind        `json:"kind"`
	Parent string      `json:"parent,omitempty"`
	Files  []fileEntry `json:"files"`
	// DBSize is the size of the database the snapshot restores to (0 in
	// metas written before it was recorded: unknown).
	DBSize int64 `json:"db_size,omitempty"`
	// Received marks a snapshot received from another node: an install
	// may move its files into the live database instead of copying them
	// (adopt.go).
	Received bool `json:"received,omitempty"`
	// AdoptPath is set while an install moves the snapshot's database to
	// that path, on its way to becoming the live database; crash recovery
	// finishes or undoes the move (adopt.go).
	AdoptPath string `json:"adopt_path,omitempty"`
	// InLiveDB marks a snapshot whose files became the live database: it
	// has no files left and cannot be opened; it still tells Raft the index,
	// term and configuration of its last snapshot.
	InLiveDB bool `json:"in_live_db,omitempty"`
}

// leaseKeeper is what the Catalog needs of its LeaseManager: a lease for
// each reader of snapshot files, and waits for those leases before a file
// is removed (Guard) or a consolidation rewrites a chain (Exclusive).
type leaseKeeper interface {
	Acquire(ctx context.Context, name string, paths ...string) (*Lease, error)
	Guard(ctx context.Context, op string, paths []string, fn func() error) error
	Exclusive(ctx context.Context, op string, paths []string, fn func() error) error
}

// fullRequirer is what the Catalog needs of the capture side: to be told
// that the live database no longer continues the head (a snapshot was
// received from another node, or the chain changed under a Persist), so
// that the next capture is full. WALCapture implements it.
type fullRequirer interface {
	requireFull(why string)
}

// Catalog is the store of snapshots on disk: it creates snapshot
// directories through sinks, lists and opens them as streams, consolidates
// the chain of incrementals into a full snapshot and prunes what the head's
// chain no longer needs (in a background janitor), and repairs whatever an
// interrupted create or consolidation left behind when it is opened.
//
// Its epoch counts the snapshots received from another node (counted when
// one becomes the head) and the installs into the live database (counted
// by the Installer before the swap). A capture records the epoch; the
// Catalog refuses to store it (ErrSuperseded) once the epoch moved on.
//
// Locks: mu guards the catalogue (snaps, head, retired, epoch and the
// counters); consolMu serializes Consolidate and prune, which change files
// of existing snapshots; sinkMu serializes the choice of new snapshot ids.
// consolMu is taken before mu, never the other way round, and mu is never
// held while waiting for a lease.
type Catalog struct {
	dir              string
	fs               FS
	log              *slog.Logger
	hook             stepHook
	consolidateAfter int
	onReceive        func(n int)
	onSend           func(n int)
	pull             PullOptions
	offers           offerTable
	leases           leaseKeeper
	errs             *lastError
	full             fullRequirer // set by start

	mu    sync.Mutex
	snaps map[string]*snapMeta
	head  string
	// retired remembers (bounded, oldest dropped first) the ids that
	// consolidation merged away or pruning removed, so that Open of one of
	// them streams the newest snapshot instead of failing: Raft lists, then
	// opens, and the chain may change in between.
	retired      map[string]bool
	retiredOrder []string
	epoch        uint64
	lastIdx      uint64
	created      uint64
	consols      uint64
	consolAt     time.Time

	consolMu sync.Mutex
	sinkMu   sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	wg     sync.WaitGroup
}

var _ raft.SnapshotStore = (*Catalog)(nil)

// openCatalog opens the catalogue in dir (an absolute path), creating its
// directories and repairing what an interruption left behind. Its janitor
// starts with start.
func openCatalog(dir string, opts Options, leases leaseKeeper, errs *lastError) (*Catalog, error) {
	c := &Catalog{dir: dir, fs: opts.FS, log: opts.Logger, hook: opts.hook,
		consolidateAfter: opts.ConsolidateAfter, onReceive: opts.OnReceive, onSend: opts.OnSend, pull: opts.Pull, leases: leases, errs: errs,
		snaps: map[string]*snapMeta{}, retired: map[string]bool{}, kick: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := c.recover(); err != nil {
		return nil, err
	}
	return c, nil
}

// start records the capture side the Catalog tells about received
// snapshots and starts the janitor that prunes and consolidates.
func (c *Catalog) start(full fullRequirer) {
	c.full = full
	c.wg.Add(1)
	go c.janitor()
}

// close stops the janitor.
func (c *Catalog) close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Catalog) snapDir(id string) string { return filepath.Join(c.dir, "snapshots", id) }
func (c *Catalog) tmpDir() string           { return filepath.Join(c.dir, "tmp") }
func (c *Catalog) journalPath() string      { return filepath.Join(c.dir, "consolidate.json") }

// headEpoch returns the head and the epoch, read together.
func (c *Catalog) headEpoch() (head string, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head, c.epoch
}

// dbSize is the size of the database snapshot id restores to (0 if the
// catalogue does not hold id, or does not know).
func (c *Catalog) dbSize(id string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.snaps[id]; ok {
		return m.DBSize
	}
	return 0
}

// current fails with ErrSuperseded if the epoch moved past epoch.
func (c *Catalog) current(epoch uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.currentLocked(epoch)
}

func (c *Catalog) currentLocked(epoch uint64) error {
	if c.epoch != epoch {
		return ErrSuperseded
	}
	return nil
}

// supersedeCaptures advances the epoch: every capture taken so far is
// superseded (the Installer calls it before swapping the live database).
func (c *Catalog) supersedeCaptures() {
	c.mu.Lock()
	c.epoch++
	c.mu.Unlock()
}

// chainLocked returns the snapshots from the full one id builds on up to id.
func (c *Catalog) chainLocked(id string) ([]*snapMeta, error) {
	var chain []*snapMeta
	for cur := id; ; {
		m, ok := c.snaps[cur]
		if !ok {
			return nil, fmt.Errorf("snapshot %s: not found (chain of %s)", cur, id)
		}
		chain = append(chain, m)
		if m.Kind == KindFull {
			break
		}
		cur = m.Parent
		if len(chain) > len(c.snaps) {
			return nil, fmt.Errorf("snapshot %s: parent cycle", id)
		}
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// sources lists a chain's files in stream order: the database, then WALs.
func (c *Catalog) sources(chain []*snapMeta) []source {
	var out []source
	for _, m := range chain {
		for _, f := range m.Files {
			e := f
			if f.Name != "db" {
				e.Name = "wal"
			}
			out = append(out, source{path: filepath.Join(c.snapDir(m.ID), f.Name), entry: e})
		}
	}
	return out
}

func streamHeaderFor(m *snapMeta, src []source) streamHeader {
	h := streamHeader{ID: m.ID, Index: m.Index, Term: m.Term}
	for _, f := range src {
		h.Files = append(h.Files, f.entry)
	}
	return h
}

func streamLen(h streamHeader) (int64, error) {
	b, err := encodeHeader(h)
	if err != nil {
		return 0, err
	}
	n := int64(len(b))
	for _, f := range h.Files {
		n += f.Size
	}
	return n, nil
}

// List returns the snapshots on disk, newest first. Every listed snapshot
// can be opened, except one whose files became the live database (InLiveDB,
// Size 0) until the next snapshot replaces it; Size is the length of the
// stream (or manifest) Open returns.
func (c *Catalog) List() ([]*raft.SnapshotMeta, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*raft.SnapshotMeta
	for _, m := range c.sortedLocked() {
		meta := m.SnapshotMeta
		if m.InLiveDB {
			// Raft still needs its index, term and configuration.
			meta.Size = 0
			out = append(out, &meta)
			continue
		}
		plan, err := c.planStreamLocked(m.ID)
		if err != nil {
			continue
		}
		if c.pull.Address != "" {
			meta.Size, err = c.manifestLen(plan)
		} else {
			meta.Size, err = streamLen(plan.expectedHeader())
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &meta)
	}
	return out, nil
}

// sortedLocked returns the snapshots newest first.
func (c *Catalog) sortedLocked() []*snapMeta {
	out := make([]*snapMeta, 0, len(c.snaps))
	for _, m := range c.snaps {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[i], out[j]) })
	return out
}

func newer(a, b *snapMeta) bool {
	if a.Term != b.Term {
		return a.Term > b.Term
	}
	if a.Index != b.Index {
		return a.Index > b.Index
	}
	return a.ID > b.ID
}

// retireLocked records that id left the catalogue (merged or pruned).
func (c *Catalog) retireLocked(id string) {
	const keep = 1024
	if c.retired[id] {
		return
	}
	c.retired[id] = true
	c.retiredOrder = append(c.retiredOrder, id)
	if len(c.retiredOrder) > keep {
		delete(c.retired, c.retiredOrder[0])
		c.retiredOrder = c.retiredOrder[1:]
	}
}

// readMeta loads a snapshot directory's meta.json.
func (c *Catalog) readMeta(dir string) (*snapMeta, error) {
	f, err := c.fs.Open(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var m snapMeta
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s/meta.json: %w", dir, err)
	}
	return &m, nil
}

// writeFileAtomic writes data to path through a temporary file, fsync and
// rename, so a reader sees the old content or the new, never a mix.
func (c *Catalog) writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := c.fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := c.fs.Rename(tmp, path); err != nil {
		return err
	}
	return c.fs.SyncDir(filepath.Dir(path))
}

func (c *Catalog) writeMeta(dir string, m *snapMeta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return c.writeFileAtomic(filepath.Join(dir, "meta.json"), data)
}

// guardedRemoveAll removes path once no lease covers it.
func (c *Catalog) guardedRemoveAll(path string) error {
	return c.leases.Guard(c.ctx, "remove "+filepath.Base(path), []string{path}, func() error {
		return c.fs.RemoveAll(path)
	})
}

func (c *Catalog) exists(path string) (bool, error) {
	_, err := c.fs.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// hashFile describes the file at path: its size and checksum (CRC-32C).
func (c *Catalog) hashFile(path string) (fileEntry, error) {
	f, err := c.fs.Open(path)
	if err != nil {
		return fileEntry{}, err
	}
	defer f.Close()
	hw := newHashingWriter(io.Discard)
	if _, err := io.CopyBuffer(hw, f, make([]byte, 1<<20)); err != nil {
		return fileEntry{}, err
	}
	return hw.entry(filepath.Base(path)), nil
}
