package snapshot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
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

	// Pull turns on installs by pull: Raft's InstallSnapshot carries a
	// manifest and the follower pulls the files (see DESIGN.md, "Installs
	// by pull"). The zero value streams the data through Raft, as before.
	Pull PullOptions

	// OnSend, if set, is called with the size of every chunk a pull this
	// store serves reads from its files (16 KiB, as Raft's own messages,
	// when it is set), before the chunk is sent: a test hook to slow the
	// leader's side of an install (it may sleep).
	OnSend func(n int)

	// OnReceive, if set, is called with the size of every Write a sink
	// receives from another node, before it is processed: a test hook to
	// slow installs down (it may sleep).
	OnReceive func(n int)

	// hook, set by tests, runs after each step of create and consolidate;
	// an error makes the operation fail there (simulated crash).
	hook stepHook
}

// stepHook is Options.hook: a test's view of the named steps of capture,
// persist, open and consolidation.
type stepHook func(step string) error

// at runs the hook for step, if there is one; its error names the step.
func (h stepHook) at(step string) error {
	if h == nil {
		return nil
	}
	if err := h(step); err != nil {
		return fmt.Errorf("at step %s: %w", step, err)
	}
	return nil
}

// Store is a raft.SnapshotStore keeping a chain of snapshots: one full
// snapshot followed by incremental ones, each holding the WAL frames since
// its parent. It is a thin composition of four parts, each with its own
// lock (see DESIGN.md, "The parts and their boundaries"): the Catalog of
// snapshots on disk, the LeaseManager that guards their files while they
// are read, the WALCapture that takes snapshots of the live database, and
// the Installer that replaces the live database with a snapshot.
type Store struct {
	catalog *Catalog
	capture *WALCapture
	install *Installer
	backup  *LiveBackup
	leases  leaseCounter
	errs    *lastError
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
	errs := &lastError{log: opts.Logger}
	leases := NewLeaseManager(opts.LeaseIdleTimeout, opts.Logger)
	catalog, err := openCatalog(abs, opts, leases, errs)
	if err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
	}
	capture := newWALCapture(catalog, opts, errs)
	catalog.start(capture)
	return &Store{
		catalog: catalog,
		capture: capture,
		install: newInstaller(opts.FS, capture, catalog, leases, errs),
		backup:  &LiveBackup{fs: opts.FS, leases: leases, log: opts.Logger},
		leases:  leases,
		errs:    errs,
	}, nil
}

// Close stops background work. Leases already held stay valid until their
// readers close them.
func (s *Store) Close() error {
	s.catalog.close()
	return nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.catalog.dir }

// Create starts a new snapshot at index and term (raft.SnapshotStore).
func (s *Store) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	return s.catalog.Create(version, index, term, configuration, configurationIndex, trans)
}

// List returns the snapshots on disk, newest first (raft.SnapshotStore).
// Every listed snapshot can be opened; Size is the length of the stream
// Open returns.
func (s *Store) List() ([]*raft.SnapshotMeta, error) { return s.catalog.List() }

// Open returns snapshot id as a stream any node can turn into a database
// (raft.SnapshotStore); see Catalog.Open.
func (s *Store) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) { return s.catalog.Open(id) }

// OpenContext is Open with a context (ending it revokes the lease) and a
// name for the lease in logs; see Catalog.OpenContext.
func (s *Store) OpenContext(ctx context.Context, name, id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	return s.catalog.OpenContext(ctx, name, id)
}

// BackupLive hands send the live database db as one SQLite file, as of
// the moment it starts, while writes go on; see LiveBackup.Backup.
func (s *Store) BackupLive(ctx context.Context, db LiveSource, send func(r io.Reader, pos sqlitedb.Position, size int64) error) error {
	return s.backup.Backup(ctx, db, send)
}

// Consolidate folds the latest snapshot's chain into one full snapshot;
// see Catalog.Consolidate.
func (s *Store) Consolidate(ctx context.Context) error { return s.catalog.Consolidate(ctx) }

// Capture takes the FSM's side of a snapshot of db; call it from
// FSM.Snapshot. See WALCapture.Capture.
func (s *Store) Capture(db *sqlitedb.DB, fullRequired bool) (raft.FSMSnapshot, error) {
	return s.capture.Capture(db, fullRequired)
}

// ServePull serves another node's pull of an offer this store's Raft made;
// see Catalog.ServePull.
func (s *Store) ServePull(ctx context.Context, token, id string) (*Pull, error) {
	return s.catalog.ServePull(ctx, token, id)
}

// Install is FSM.Restore for a database kept by this store's node; see
// Installer.Install.
func (s *Store) Install(db *sqlitedb.DB, rc io.ReadCloser) error { return s.install.Install(db, rc) }
