package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLeaseIdleTimeout is how long a lease may go without a byte read
// before it is revoked.
const DefaultLeaseIdleTimeout = 30 * time.Second

// ErrLeaseRevoked is wrapped by the error a lease's readers return once the
// lease was revoked: idle too long, or its context ended.
var ErrLeaseRevoked = errors.New("snapshot lease revoked")

// ErrLeaseReleased is returned by reads through a lease that was released.
var ErrLeaseReleased = errors.New("snapshot lease released")

// LeaseManager coordinates readers of snapshot files with the operations
// that rename, remove or write into them. A reader acquires a Lease on the
// paths it is about to open; while the lease is held, Guard and Exclusive
// on overlapping paths wait (they never fail because of a lease). A path
// covers itself and, if it is a directory, everything under it.
type LeaseManager struct {
	idle time.Duration
	log  *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every release
	leases  map[*Lease]struct{}
	excl    map[*exclusive]struct{}
	nextID  uint64
	waits   atomic.Uint64
}

type exclusive struct {
	op    string
	paths []string
}

// NewLeaseManager returns a manager whose leases are revoked after idle
// without a read (DefaultLeaseIdleTimeout if idle <= 0). log may be nil.
func NewLeaseManager(idle time.Duration, log *slog.Logger) *LeaseManager {
	if idle <= 0 {
		idle = DefaultLeaseIdleTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LeaseManager{idle: idle, log: log, changed: make(chan struct{}),
		leases: map[*Lease]struct{}{}, excl: map[*exclusive]struct{}{}}
}

// Held is the number of leases currently held.
func (m *LeaseManager) Held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// Waits is the number of operations (and lease acquisitions) that had to
// wait, since the manager was created.
func (m *LeaseManager) Waits() uint64 { return m.waits.Load() }

func cleanPaths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = key(p)
	}
	return out
}

// overlaps reports whether a and b are the same path or one contains the
// other.
func overlaps(a, b string) bool {
	sep := string(filepath.Separator)
	return a == b || strings.HasPrefix(a, b+sep) || strings.HasPrefix(b, a+sep)
}

func anyOverlap(as, bs []string) bool {
	for _, a := range as {
		for _, b := range bs {
			if overlaps(a, b) {
				return true
			}
		}
	}
	return false
}

func (m *LeaseManager) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// leaseOnLocked returns a held lease covering any of paths.
func (m *LeaseManager) leaseOnLocked(paths []string) *Lease {
	for l := range m.leases {
		if anyOverlap(l.paths, paths) {
			return l
		}
	}
	return nil
}

// waitLocked releases m.mu until the next change or ctx's end.
func (m *LeaseManager) waitLocked(ctx context.Context) error {
	ch := m.changed
	m.mu.Unlock()
	defer m.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Acquire takes a lease named name (for logs) on paths. It waits only while
// an Exclusive operation on overlapping paths is pending or running, or
// until ctx ends. The lease ends with Release, when ctx ends, or after the
// idle timeout without a read through Open's readers.
func (m *LeaseManager) Acquire(ctx context.Context, name string, paths ...string) (*Lease, error) {
	ps := cleanPaths(paths)
	m.mu.Lock()
	var start time.Time
	for {
		var blocker *exclusive
		for x := range m.excl {
			if anyOverlap(x.paths, ps) {
				blocker = x
				break
			}
		}
		if blocker == nil {
			break
		}
		if start.IsZero() {
			start = time.Now()
			m.waits.Add(1)
			m.log.Info("snapshot lease waiting for an exclusive operation", "lease", name, "op", blocker.op)
		}
		if err := m.waitLocked(ctx); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	m.nextID++
	lctx, cancel := context.WithCancel(ctx)
	l := &Lease{m: m, id: m.nextID, name: name, paths: ps, ctx: lctx, cancel: cancel, acquired: time.Now()}
	l.lastRead.Store(time.Now().UnixNano())
	m.leases[l] = struct{}{}
	m.mu.Unlock()
	if !start.IsZero() {
		m.log.Info("snapshot lease acquired after waiting", "lease", name, "waited", time.Since(start))
	}
	go l.watch()
	return l, nil
}

// Guard runs fn (a rename or remove of paths) once no lease covers any of
// paths, waiting as long as it takes; while fn runs no lease on them can be
// acquired. The wait is counted and logged. ctx only aborts the wait (store
// shutdown); a lease never makes Guard fail.
func (m *LeaseManager) Guard(ctx context.Context, op string, paths []string, fn func() error) error {
	ps := cleanPaths(paths)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.waitLeasesLocked(ctx, op, ps); err != nil {
		return err
	}
	return fn()
}

func (m *LeaseManager) waitLeasesLocked(ctx context.Context, op string, ps []string) error {
	var start time.Time
	for {
		l := m.leaseOnLocked(ps)
		if l == nil {
			break
		}
		if start.IsZero() {
			start = time.Now()
			m.waits.Add(1)
			m.log.Info("snapshot operation waiting for a lease", "op", op, "lease", l.name,
				"lease_age", time.Since(l.acquired).Round(time.Millisecond), "idle_timeout", m.idle)
		}
		if err := m.waitLocked(ctx); err != nil {
			return fmt.Errorf("%s: waiting for snapshot lease: %w", op, err)
		}
	}
	if !start.IsZero() {
		m.log.Info("snapshot operation proceeding after lease wait", "op", op, "waited", time.Since(start))
	}
	return nil
}

// Exclusive runs fn, a multi-step operation that writes into, renames or
// removes paths, once no lease covers them. From the moment it is called
// until fn returns, new leases on overlapping paths wait, so a stream of
// readers cannot starve it. ctx only aborts the wait.
func (m *LeaseManager) Exclusive(ctx context.Context, op string, paths []string, fn func() error) error {
	x := &exclusive{op: op, paths: cleanPaths(paths)}
	m.mu.Lock()
	m.excl[x] = struct{}{}
	err := m.waitLeasesLocked(ctx, op, x.paths)
	m.mu.Unlock()
	if err == nil {
		err = fn()
	}
	m.mu.Lock()
	delete(m.excl, x)
	m.broadcastLocked()
	m.mu.Unlock()
	return err
}

// Lease is a reader's claim on snapshot files. Open files only through the
// lease, so that revocation can close them.
type Lease struct {
	m        *LeaseManager
	id       uint64
	name     string
	paths    []string
	ctx      context.Context
	cancel   context.CancelFunc
	acquired time.Time
	lastRead atomic.Int64

	mu    sync.Mutex
	files map[File]struct{}
	err   error // why the lease ended; nil while held
}

// Err is nil while the lease is held, and otherwise says why it ended.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Release ends the lease and closes the files opened through it. It is safe
// to call more than once.
func (l *Lease) Release() { l.end(ErrLeaseReleased) }

func (l *Lease) end(why error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = why
	files := l.files
	l.files = nil
	l.mu.Unlock()
	for f := range files {
		f.Close()
	}
	l.cancel()
	m := l.m
	m.mu.Lock()
	delete(m.leases, l)
	m.broadcastLocked()
	m.mu.Unlock()
}

func (l *Lease) watch() {
	tick := max(l.m.idle/8, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			if l.Err() == nil {
				l.m.log.Warn("snapshot lease revoked: context ended", "lease", l.name, "error", l.ctx.Err())
				l.end(fmt.Errorf("%w (%s): %v", ErrLeaseRevoked, l.name, context.Cause(l.ctx)))
			}
			return
		case <-t.C:
			idle := time.Since(time.Unix(0, l.lastRead.Load()))
			if idle > l.m.idle {
				l.m.log.Warn("snapshot lease revoked: reader idle", "lease", l.name, "idle", idle.Round(time.Millisecond),
					"idle_timeout", l.m.idle)
				l.end(fmt.Errorf("%w (%s): no bytes read for %v (idle timeout %v)", ErrLeaseRevoked, l.name,
					idle.Round(time.Millisecond), l.m.idle))
				return
			}
		}
	}
}

// Done is closed once the lease has ended, for whatever reason.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Touch records reader activity, postponing idle revocation.
func (l *Lease) Touch() { l.lastRead.Store(time.Now().UnixNano()) }

// Open opens a covered file for reading through fsys. Reads through it
// keep the lease alive; once the lease ends they fail with its reason.
func (l *Lease) Open(fsys FS, name string) (io.ReadCloser, error) {
	return l.open(fsys, name)
}

// open is Open returning the reader itself, which also reads at offsets.
func (l *Lease) open(fsys FS, name string) (*leasedReader, error) {
	k := key(name)
	covered := false
	for _, p := range l.paths {
		if overlaps(p, k) && len(p) <= len(k) {
			covered = true
		}
	}
	if !covered {
		return nil, fmt.Errorf("snapshot lease %s does not cover %s", l.name, name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if l.files == nil {
		l.files = map[File]struct{}{}
	}
	l.files[f] = struct{}{}
	return &leasedReader{l: l, f: f}, nil
}

type leasedReader struct {
	l *Lease
	f File
}

// Read reads from the file, keeping the lease alive; after the lease ends it
// returns why.
func (r *leasedReader) Read(p []byte) (int, error) {
	if err := r.l.Err(); err != nil {
		return 0, err
	}
	n, err := r.f.Read(p)
	if n > 0 {
		r.l.Touch()
	}
	if err != nil && err != io.EOF {
		if lerr := r.l.Err(); lerr != nil {
			return n, lerr
		}
	}
	return n, err
}

// ReadAt reads from the file at off, like Read keeping the lease alive
// and failing with the lease's reason once it ended.
func (r *leasedReader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.l.Err(); err != nil {
		return 0, err
	}
	n, err := r.f.ReadAt(p, off)
	if n > 0 {
		r.l.Touch()
	}
	if err != nil && err != io.EOF {
		if lerr := r.l.Err(); lerr != nil {
			return n, lerr
		}
	}
	return n, err
}

// Close closes the file (the lease stays held until released).
func (r *leasedReader) Close() error {
	r.l.mu.Lock()
	_, mine := r.l.files[r.f]
	delete(r.l.files, r.f)
	r.l.mu.Unlock()
	if !mine {
		return nil // closed by revocation
	}
	return r.f.Close()
}
