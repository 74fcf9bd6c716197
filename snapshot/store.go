package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Kind says whether a snapshot holds a whole database or only the WAL
// frames written since its parent. The values match the proto enum
// sqlraft.v1.SnapshotKind.
type Kind int

const (
	// KindFull is a complete database (possibly with WAL files to apply).
	KindFull Kind = 1
	// KindIncremental is the WAL frames written since the parent snapshot.
	KindIncremental Kind = 2
)

// String returns "full" or "incremental".
func (k Kind) String() string {
	if k == KindIncremental {
		return "incremental"
	}
	return "full"
}

// Options configure a Store.
type Options struct {
	// FS performs every file operation (default OSFS).
	FS FS
	// Logger receives lease waits, revocations and snapshot errors
	// (default: slog's default logger, with component=snapshot).
	Logger *slog.Logger
	// LeaseIdleTimeout revokes a reader's lease after this long without a
	// byte read (default 30 s).
	LeaseIdleTimeout time.Duration
	// CheckpointBusyTimeout bounds how long a checkpoint of the live
	// database waits for readers (default 2 s). An incomplete checkpoint is
	// not an error; it makes the next snapshot full.
	CheckpointBusyTimeout time.Duration
	// ConsolidateAfter is the number of incremental snapshots in the chain
	// that triggers consolidation into a full one (default 8; negative
	// disables automatic consolidation).
	ConsolidateAfter int

	// OnReceive, if set, is called with the size of every Write a sink
	// receives from another node, before it is processed: a test hook to
	// slow installs down (it may sleep).
	OnReceive func(n int)

	// hook, set by tests, runs after each step of create and consolidate;
	// an error makes the operation fail there (simulated crash).
	hook func(step string) error
}

// snapMeta is a snapshot's meta.json.
type snapMeta struct {
	raft.SnapshotMeta
	Kind   Kind        `json:"kind"`
	Parent string      `json:"parent,omitempty"`
	Files  []fileEntry `json:"files"`
	// DBSize is the size of the database the snapshot restores to (0 in
	// metas written before it was recorded: unknown).
	DBSize int64 `json:"db_size,omitempty"`
}

// Store is a raft.SnapshotStore keeping a chain of snapshots: one full
// snapshot followed by incremental ones, each holding the WAL frames since
// its parent. See DESIGN.md.
type Store struct {
	dir    string
	fs     FS
	opts   Options
	log    *slog.Logger
	leases *LeaseManager

	mu       sync.Mutex
	snaps    map[string]*snapMeta
	head     string
	needFull string // non-empty: why the next capture must be full
	live     liveStat
	pending  bool
	lastErr  string
	lastIdx  uint64
	// retired remembers (bounded, oldest dropped first) the ids that
	// consolidation merged away or pruning removed, so that Open of one of
	// them streams the newest snapshot instead of failing: Raft lists, then
	// opens, and the chain may change in between.
	retired      map[string]bool
	retiredOrder []string
	// installs counts snapshots received from another node and installs;
	// a capture taken before the count changed is superseded (Persist).
	installs   uint64
	superseded uint64
	created    uint64
	consols    uint64
	consolAt   time.Time
	consolMu   sync.Mutex

	// liveMu is held while Persist copies the live database file and while
	// Install bumps liveGen before swapping the file.
	liveMu  sync.Mutex
	liveGen uint64
	sinkMu  sync.Mutex // serializes the choice of new snapshot ids

	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	wg     sync.WaitGroup
}

var _ raft.SnapshotStore = (*Store)(nil)

// New opens (creating if needed) the store in dir, repairing whatever an
// interrupted create or consolidation left behind, and starts the
// background goroutine that consolidates and prunes.
func New(dir string, opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "snapshot")
	}
	if opts.CheckpointBusyTimeout <= 0 {
		opts.CheckpointBusyTimeout = 2 * time.Second
	}
	if opts.ConsolidateAfter == 0 {
		opts.ConsolidateAfter = 8
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, fs: opts.FS, opts: opts, log: opts.Logger,
		leases: NewLeaseManager(opts.LeaseIdleTimeout, opts.Logger),
		snaps:  map[string]*snapMeta{}, retired: map[string]bool{}, needFull: "first snapshot since start", kick: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// Close stops background work. Leases already held stay valid until their
// readers close them.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) snapDir(id string) string { return filepath.Join(s.dir, "snapshots", id) }
func (s *Store) tmpDir() string           { return filepath.Join(s.dir, "tmp") }
func (s *Store) journalPath() string      { return filepath.Join(s.dir, "consolidate.json") }

func (s *Store) step(name string) error {
	if s.opts.hook == nil {
		return nil
	}
	if err := s.opts.hook(name); err != nil {
		return fmt.Errorf("at step %s: %w", name, err)
	}
	return nil
}

func (s *Store) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
	s.log.Error("snapshot error", "error", err)
}

// requireFullLocked makes the next capture full, recording why.
func (s *Store) requireFullLocked(why string) {
	if s.needFull == "" {
		s.needFull = why
	}
}

// chainLocked returns the snapshots from the full one id builds on up to id.
func (s *Store) chainLocked(id string) ([]*snapMeta, error) {
	var chain []*snapMeta
	for cur := id; ; {
		m, ok := s.snaps[cur]
		if !ok {
			return nil, fmt.Errorf("snapshot %s: not found (chain of %s)", cur, id)
		}
		chain = append(chain, m)
		if m.Kind == KindFull {
			break
		}
		cur = m.Parent
		if len(chain) > len(s.snaps) {
			return nil, fmt.Errorf("snapshot %s: parent cycle", id)
		}
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// sources lists a chain's files in stream order: the database, then WALs.
func (s *Store) sources(chain []*snapMeta) []source {
	var out []source
	for _, m := range chain {
		for _, f := range m.Files {
			e := f
			if f.Name != "db" {
				e.Name = "wal"
			}
			out = append(out, source{path: filepath.Join(s.snapDir(m.ID), f.Name), entry: e})
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
// can be opened; Size is the length of the stream Open returns.
func (s *Store) List() ([]*raft.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*raft.SnapshotMeta
	for _, m := range s.sortedLocked() {
		plan, err := s.planStreamLocked(m.ID)
		if err != nil {
			continue
		}
		meta := m.SnapshotMeta
		if meta.Size, err = streamLen(plan.expectedHeader()); err != nil {
			return nil, err
		}
		out = append(out, &meta)
	}
	return out, nil
}

// sortedLocked returns the snapshots newest first.
func (s *Store) sortedLocked() []*snapMeta {
	out := make([]*snapMeta, 0, len(s.snaps))
	for _, m := range s.snaps {
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

// Open returns snapshot id as a stream any node can turn into a database
// (see Restore). It first takes a lease on the snapshot's files, so that
// nothing renames, removes or writes into them until the stream is closed,
// revoked after the idle timeout, or fails. The stream holds about the
// database's size: the chain's files when they are at most 10% larger than
// the database, otherwise one image consolidated from them for this stream
// (see DESIGN.md, "What a stream sends").
func (s *Store) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	return s.OpenContext(context.Background(), "raft:"+id, id)
}

// OpenContext is Open with a context (ending it revokes the lease) and a
// name for the lease in logs; backup streams use it.
//
// If consolidation merged id away or pruning removed it (between Raft's
// List and Open, or while Open waited for its lease behind a
// consolidation), the newest snapshot is streamed instead; the returned
// meta describes what is actually streamed, and both Raft's leader and
// Backup take the index, term and configuration from it.
func (s *Store) OpenContext(ctx context.Context, name, id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	for {
		s.mu.Lock()
		plan, err := s.planOpenLocked(id)
		s.mu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		if err := s.step("open.planned"); err != nil {
			return nil, nil, err
		}
		paths, image := plan.dirs, ""
		if plan.image {
			image = s.newImagePath()
			paths = append(append([]string(nil), paths...), image)
		}
		lease, err := s.leases.Acquire(ctx, name, paths...)
		if err != nil {
			return nil, nil, err
		}
		s.mu.Lock()
		again, err := s.planOpenLocked(id)
		s.mu.Unlock()
		if err != nil || again.meta.ID != plan.meta.ID || !sameSources(plan.chain, again.chain) {
			lease.Release() // consolidated or pruned meanwhile; resolve again
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		if plan.meta.ID != id {
			s.log.Info("snapshot merged away or pruned before it was opened; streaming the newest instead",
				"requested", id, "streaming", plan.meta.ID, "lease", name)
		}
		meta, st, err := s.openPlanned(plan, lease, image)
		if err != nil {
			lease.Release()
			return nil, nil, err
		}
		return meta, st, nil
	}
}

// planOpenLocked plans the stream of id or, if id was retired, of the
// newest snapshot.
func (s *Store) planOpenLocked(id string) (streamPlan, error) {
	if _, ok := s.snaps[id]; !ok && s.retired[id] && s.head != "" {
		id = s.head
	}
	return s.planStreamLocked(id)
}

// retireLocked records that id left the store (merged or pruned).
func (s *Store) retireLocked(id string) {
	const keep = 1024
	if s.retired[id] {
		return
	}
	s.retired[id] = true
	s.retiredOrder = append(s.retiredOrder, id)
	if len(s.retiredOrder) > keep {
		delete(s.retired, s.retiredOrder[0])
		s.retiredOrder = s.retiredOrder[1:]
	}
}

// openPlanned builds the stream of plan under lease (which covers the
// chain, and image when the plan sends one).
func (s *Store) openPlanned(plan streamPlan, lease *Lease, image string) (*raft.SnapshotMeta, *stream, error) {
	files := plan.chain
	if plan.image {
		img, err := s.buildImage(lease, plan.chain, image)
		if err != nil {
			err = fmt.Errorf("snapshot %s: consolidate an image to send: %w", plan.meta.ID, err)
			s.setErr(err)
			return nil, nil, err
		}
		files = []source{img}
	}
	h := plan.header(files)
	hdr, err := encodeHeader(h)
	if err != nil {
		if plan.image {
			s.removeImage(image)
		}
		return nil, nil, err
	}
	meta := plan.meta.SnapshotMeta
	meta.Size, _ = streamLen(h)
	st := &stream{lease: lease, fsys: s.fs, hdr: hdr, files: files}
	if plan.image {
		st.onClose = func() { s.removeImage(image) }
		s.log.Debug("streaming a consolidated image", "id", meta.ID, "chain_files", len(plan.chain),
			"image_bytes", files[0].entry.Size)
	}
	return &meta, st, nil
}

func (s *Store) resolveLocked(id string) (*snapMeta, []source, []string, error) {
	m, ok := s.snaps[id]
	if !ok {
		return nil, nil, nil, fmt.Errorf("snapshot %s: not found", id)
	}
	chain, err := s.chainLocked(id)
	if err != nil {
		return nil, nil, nil, err
	}
	dirs := make([]string, len(chain))
	for i, c := range chain {
		dirs[i] = s.snapDir(c.ID)
	}
	return m, s.sources(chain), dirs, nil
}

func sameSources(a, b []source) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readMeta loads a snapshot directory's meta.json.
func (s *Store) readMeta(dir string) (*snapMeta, error) {
	f, err := s.fs.Open(filepath.Join(dir, "meta.json"))
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
func (s *Store) writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := s.fs.Create(tmp)
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
	if err := s.fs.Rename(tmp, path); err != nil {
		return err
	}
	return s.fs.SyncDir(filepath.Dir(path))
}

func (s *Store) writeMeta(dir string, m *snapMeta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(filepath.Join(dir, "meta.json"), data)
}

// guardedRemoveAll removes path once no lease covers it.
func (s *Store) guardedRemoveAll(path string) error {
	return s.leases.Guard(s.ctx, "remove "+filepath.Base(path), []string{path}, func() error {
		return s.fs.RemoveAll(path)
	})
}
