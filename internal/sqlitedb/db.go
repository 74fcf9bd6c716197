package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mattn/go-sqlite3"
)

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("sqlitedb: database is closed")

// Options configure a DB.
type Options struct {
	// Readers is the number of read-only connections (default 4).
	Readers int
	// BusyTimeoutMS is SQLite's busy timeout on every connection (default 5000).
	BusyTimeoutMS int
	// AutoCheckpoint sets PRAGMA wal_autocheckpoint on the writer. Zero keeps
	// SQLite's default (1000 pages); negative turns automatic checkpoints off.
	AutoCheckpoint int
	// MaxResultBytes bounds the rows one Query call collects, and one
	// QueryStream message (approximate encoded size; default 64 MiB).
	// Larger results need QueryStream.
	MaxResultBytes int
	// MaxStreams bounds concurrent QueryStream calls (default 16). Each has a
	// connection of its own, so clients that stop reading their streams
	// cannot starve the pool that validation and local reads use.
	MaxStreams int
	// StreamStopWait is how long Replace and Close wait for the streams they
	// stop to let go of their connections (default 5 s). A stream whose
	// client stopped reading cannot be stopped while it waits to send; past
	// this bound the swap goes ahead without it.
	StreamStopWait time.Duration
}

func (o *Options) defaults() {
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 16
	}
	if o.StreamStopWait <= 0 {
		o.StreamStopWait = 5 * time.Second
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 64 << 20
	}
	if o.BusyTimeoutMS <= 0 {
		o.BusyTimeoutMS = 5000
	}
}

// DB is a node's SQLite database: one writer connection, used only by the
// Raft FSM, and a pool of read-only connections for local reads.
type DB struct {
	path string
	opts Options

	// mu guards the connections against Replace and Close: readers hold it
	// shared while they use a connection; Replace and Close take it exclusive.
	mu      sync.RWMutex
	closed  bool
	writer  *conn
	clock   *Clock
	readers chan *conn
	// checkers validate statements (prepare only) and read sqlraft's own
	// tables. They are apart from readers so that long client reads, which
	// may hold every reader up to the query time limit, never delay the
	// validation of writes or the FSM's own lookups.
	checkers chan *conn
	streams  chan struct{} // one token per QueryStream in progress

	// writeMu is held by every write transaction (Begin until Commit or
	// Rollback) and checkpoint: PinRead takes it to start its read
	// transaction while nothing writes to the WAL (see liveread.go).
	writeMu sync.Mutex

	streamMu sync.Mutex                        // guards active
	active   map[*conn]context.CancelCauseFunc // streams in progress

	// maxPages is the cap SetMaxPages asks for; writerMaxPages the one the
	// writer has (only the writer's goroutine, in Begin, reads or sets it).
	maxPages       atomic.Int64
	writerMaxPages int64

	// applied is the Raft position of the last committed write transaction
	// (or of the file, when it was opened): reads report it without reading
	// sqlraft's table.
	applied atomic.Pointer[Position]
}

// conn is one SQLite connection with its authorizer and its prepared
// internal statements.
type conn struct {
	*sqlite3.SQLiteConn
	guard  *guard
	stmts  map[string]*sqlite3.SQLiteStmt
	cache  *stmtCache     // client statements, prepared once
	handle unsafe.Pointer // the sqlite3*, for changeCounters
	budget *budget        // the writer's per-entry allowance; nil on readers
}

func newConn(c *sqlite3.SQLiteConn, writer bool) *conn {
	g := &guard{writer: writer}
	c.RegisterAuthorizer(g.authorize)
	return &conn{SQLiteConn: c, guard: g, stmts: map[string]*sqlite3.SQLiteStmt{}, cache: newStmtCache(),
		handle: rawHandle(c)}
}

// prepared returns sqlraft's own statement sql, prepared once per
// connection. Only the goroutine holding the connection uses it.
func (c *conn) prepared(sql string) (*sqlite3.SQLiteStmt, error) {
	if st, ok := c.stmts[sql]; ok {
		return st, nil
	}
	var st driver.Stmt
	err := c.internal(func() error {
		var err error
		st, err = c.Prepare(sql)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.stmts[sql] = st.(*sqlite3.SQLiteStmt)
	return c.stmts[sql], nil
}

// close finalizes the cached statements and closes the connection.
func (c *conn) close() error {
	c.cache.purge()
	for sql, st := range c.stmts {
		st.Close()
		delete(c.stmts, sql)
	}
	if c.budget != nil {
		c.budget.remove()
	}
	return c.SQLiteConn.Close()
}

// internal runs fn with the authorizer relaxed and the write budget not
// charged, for sqlraft's own statements.
func (c *conn) internal(fn func() error) error {
	c.guard.internal = true
	defer func() { c.guard.internal = false }()
	if c.budget != nil && c.budget.armed() {
		c.budget.disarm()
		defer c.budget.arm()
	}
	return fn()
}

// Open opens (creating if needed) the database file at path in WAL mode.
func Open(path string, opts Options) (*DB, error) {
	opts.defaults()
	db := &DB{path: path, opts: opts, clock: newClock(), streams: make(chan struct{}, opts.MaxStreams),
		active: map[*conn]context.CancelCauseFunc{}}
	if err := db.openConns(); err != nil {
		return nil, err
	}
	return db, nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

func (db *DB) dsn() string {
	return fmt.Sprintf("file:%s?_busy_timeout=%d", db.path, db.opts.BusyTimeoutMS)
}

func (db *DB) openConns() error {
	w, err := db.openWriter()
	if err != nil {
		return err
	}
	db.writer = w
	pos, err := readApplied(context.Background(), w)
	if err != nil {
		db.closeConns()
		return fmt.Errorf("read the applied position: %w", err)
	}
	db.applied.Store(&pos)
	db.readers = make(chan *conn, db.opts.Readers)
	db.checkers = make(chan *conn, checkers)
	for _, pool := range []chan *conn{db.readers, db.checkers} {
		for i := 0; i < cap(pool); i++ {
			r, err := db.openReader()
			if err != nil {
				db.closeConns()
				return err
			}
			pool <- r
		}
	}
	return nil
}

// checkers is the number of connections that validate statements.
const checkers = 2

func (db *DB) openWriter() (*conn, error) {
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		return db.clock.register(c)
	}}
	c, err := drv.Open(db.dsn())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db.path, err)
	}
	conn := c.(*sqlite3.SQLiteConn)
	pragmas := []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"}
	if db.opts.AutoCheckpoint != 0 {
		pragmas = append(pragmas, fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", max(db.opts.AutoCheckpoint, 0)))
	}
	for _, p := range pragmas {
		if _, err := conn.Exec(p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := createMeta(conn); err != nil {
		conn.Close()
		return nil, err
	}
	b, err := installBudget(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	w := newConn(conn, true)
	w.budget = b
	return w, nil
}

func (db *DB) openReader() (*conn, error) {
	c, err := (&sqlite3.SQLiteDriver{}).Open(db.dsn())
	if err != nil {
		return nil, fmt.Errorf("open reader %s: %w", db.path, err)
	}
	conn := c.(*sqlite3.SQLiteConn)
	if _, err := conn.Exec("PRAGMA query_only=1", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return newConn(conn, false), nil
}

func (db *DB) closeConns() error {
	var errs []error
	for _, pool := range []*chan *conn{&db.readers, &db.checkers} {
		if *pool != nil {
			close(*pool)
			for r := range *pool {
				errs = append(errs, r.close())
			}
			*pool = nil
		}
	}
	if db.writer != nil {
		errs = append(errs, db.writer.close())
		db.writer = nil
	}
	return errors.Join(errs...)
}

// appliedPosition is the Raft position of the newest committed write: a
// read that starts after this call sees at least its data.
func (db *DB) appliedPosition() Position { return *db.applied.Load() }

// Close closes every connection. Further calls fail with ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	db.stopStreams()
	return errors.Join(db.closeConns(), db.clock.close())
}

// withReader runs fn on a pooled read-only connection, waiting for one to be
// free or ctx to end.
func (db *DB) withReader(ctx context.Context, fn func(*conn) error) error {
	return db.withPooled(ctx, func() chan *conn { return db.readers }, fn)
}

// withChecker runs fn on a connection of the checkers' pool.
func (db *DB) withChecker(ctx context.Context, fn func(*conn) error) error {
	return db.withPooled(ctx, func() chan *conn { return db.checkers }, fn)
}

func (db *DB) withPooled(ctx context.Context, pool func() chan *conn, fn func(*conn) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	p := pool()
	var c *conn
	select {
	case c = <-p:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p <- db.healthy(c) }()
	return fn(c)
}

// healthy returns c, or a fresh connection in its place when c was left
// inside a transaction (its ROLLBACK failed), so the pool never hands out a
// connection stuck on an old snapshot of the data.
func (db *DB) healthy(c *conn) *conn {
	if c.AutoCommit() {
		return c
	}
	c.close()
	fresh, err := db.openReader()
	if err != nil {
		return c // closed: its next use fails instead of reading stale data
	}
	return fresh
}

// ErrTooManyStreams is returned when Options.MaxStreams streams are running.
var ErrTooManyStreams = errors.New("too many query streams in progress; retry later")

// ErrStreamStopped ends a stream that Replace or Close had to stop.
var ErrStreamStopped = errors.New("stream stopped: the node is replacing or closing its database; retry")

// withStreamConn runs fn on a read-only connection opened for it alone.
// Unlike pooled reads, a stream does not hold the DB's lock while it runs:
// its client may stop reading, and Replace (a snapshot install, on the FSM
// goroutine) must never wait on a client. Replace and Close stop streams
// through the context fn is given.
func (db *DB) withStreamConn(ctx context.Context, fn func(context.Context, *conn) error) error {
	select {
	case db.streams <- struct{}{}:
		defer func() { <-db.streams }()
	default:
		return ErrTooManyStreams
	}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	c, err := db.openReader()
	if err != nil {
		db.mu.RUnlock()
		return err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	db.streamMu.Lock()
	db.active[c] = cancel
	db.streamMu.Unlock()
	db.mu.RUnlock()
	defer func() {
		cancel(nil)
		c.close()
		db.streamMu.Lock()
		delete(db.active, c)
		db.streamMu.Unlock()
	}()
	err = fn(sctx, c)
	if err != nil && errors.Is(context.Cause(sctx), ErrStreamStopped) {
		return ErrStreamStopped
	}
	return err
}

// Streams is the number of calls holding a connection of their own now:
// QueryStreams and checksums (at most Options.MaxStreams).
func (db *DB) Streams() int { return len(db.streams) }

// stopStreams cancels every stream and waits, up to StreamStopWait, for
// them to close their connections. The caller holds db.mu exclusively, so
// no new stream starts meanwhile.
func (db *DB) stopStreams() {
	db.streamMu.Lock()
	for _, cancel := range db.active {
		cancel(ErrStreamStopped)
	}
	deadline := time.Now().Add(db.opts.StreamStopWait)
	for len(db.active) > 0 && time.Now().Before(deadline) {
		db.streamMu.Unlock()
		time.Sleep(10 * time.Millisecond)
		db.streamMu.Lock()
	}
	db.streamMu.Unlock()
}

// FileOps are the file operations a database swap performs. The snapshot
// store passes its own file system (snapshot.FS satisfies this), so the
// swap is seen by whatever checks that file system makes (the strict one
// the snapshot tests use refuses, as Windows does, to rename a file that a
// handle it opened still holds).
type FileOps interface {
	Rename(oldpath, newpath string) error
	Remove(name string) error
}

// osFileOps performs FileOps with the os package.
type osFileOps struct{}

func (osFileOps) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFileOps) Remove(name string) error             { return os.Remove(name) }

// Replace swaps the database file for the one at src (which is moved, not
// copied), through fsys (the os package when nil). Every connection to the
// old file is closed before the rename, as Windows requires, and the
// connections are reopened on the new file.
func (db *DB) Replace(src string, fsys FileOps) error {
	if fsys == nil {
		fsys = osFileOps{}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	db.stopStreams()
	err := db.swap(src, fsys)
	if db.writer == nil { // the connections were closed: reopen on whichever file is there
		if oerr := db.openConns(); oerr != nil {
			db.closed = true // fail every later call rather than hang or crash
			return errors.Join(err, fmt.Errorf("reopen after replace: %w", oerr))
		}
	}
	return err
}

// swap closes every connection and renames src over the database file.
func (db *DB) swap(src string, fsys FileOps) error {
	if err := db.closeConns(); err != nil {
		return fmt.Errorf("close before replace: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := fsys.Remove(db.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := fsys.Rename(src, db.path); err != nil {
		return fmt.Errorf("replace database: %w", err)
	}
	return nil
}

// Size is the size in bytes of the database file (excluding the WAL).
func (db *DB) Size() int64 {
	fi, err := os.Stat(db.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
