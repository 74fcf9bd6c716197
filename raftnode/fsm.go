package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// Result is what applying one Raft entry produced, handed back to the
// proposer through raft.ApplyFuture.Response.
type Result struct {
	Results []*sqlraftv1.RequestResult
	Err     error

	rolledBack bool // a transaction request failed: undo the entry
	aborted    bool // the entry's SQL rolled back the whole SQLite transaction
}

// errEntryAborted: an entry's own SQL (INSERT OR ROLLBACK, RAISE(ROLLBACK))
// rolled back the batch's transaction, undoing the entries before it too.
var errEntryAborted = errors.New("an entry rolled back the batch transaction")

// FSM applies committed entries to SQLite. It implements raft.BatchingFSM:
// every batch of entries Raft hands over is applied in one SQLite
// transaction, each entry inside its own savepoint, so concurrent writers
// share both Raft entries and fsyncs while each request stays atomic.
//
// The applied Raft position is written in the same transaction as the data,
// so after a restart the FSM knows exactly which entries the file already
// holds and skips them when Raft replays its log.
type FSM struct {
	id     string // this node's ID: STRONG reads run only on their proposer
	db     *sqlitedb.DB
	store  SnapshotStore
	logger *slog.Logger

	applied atomic.Uint64
	// batches and entries count SQLite transactions and the command
	// entries applied in them, since start.
	batches, entries atomic.Uint64
	restores         atomic.Uint64 // snapshots installed
	afterInstall     func()        // called after every install (the node takes a snapshot)
	notify           chan struct{} // closed and replaced whenever applied advances
	mu               sync.Mutex    // guards notify and nodes
	nodes            map[string]string
	// changes fires when the node table or the Raft configuration changes
	// (and, through Node, on leadership changes): see Node.Changed.
	changes *signal
	// stop ends applyUntilDone's retries when the node stops.
	stop     chan struct{}
	stopOnce sync.Once
	// proposed are the commands this node is proposing, by their encoded
	// entry: see decode.
	proposed proposals
}

// NewFSM returns the FSM of node id over db, positioned at the index db
// records, that takes and installs snapshots through store.
func NewFSM(id string, db *sqlitedb.DB, store SnapshotStore, logger *slog.Logger) (*FSM, error) {
	f := &FSM{id: id, db: db, store: store, logger: logger, notify: make(chan struct{}), changes: newSignal(),
		stop: make(chan struct{})}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the applied position and the node table from the database.
func (f *FSM) reload() error {
	pos, err := f.db.Applied(context.Background())
	if err != nil {
		return fmt.Errorf("read applied index: %w", err)
	}
	nodes, err := f.db.Nodes(context.Background())
	if err != nil {
		return fmt.Errorf("read node table: %w", err)
	}
	f.mu.Lock()
	f.nodes = nodes
	f.mu.Unlock()
	f.setApplied(pos.Index)
	f.changes.notify()
	return nil
}

// Batching reports how many entries the FSM has applied and in how many
// SQLite transactions, since start.
func (f *FSM) Batching() (entries, transactions uint64) { return f.entries.Load(), f.batches.Load() }

// Restores is how many snapshots the FSM has installed since start.
func (f *FSM) Restores() uint64 { return f.restores.Load() }

// Applied is the index of the last entry the database reflects.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

func (f *FSM) setApplied(i uint64) {
	f.applied.Store(i)
	f.mu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
}

// WaitApplied blocks until the FSM has applied index i or ctx ends.
func (f *FSM) WaitApplied(ctx context.Context, i uint64) error {
	for {
		ch := f.appliedChanged()
		if f.applied.Load() >= i {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// appliedChanged returns a channel that is closed when the applied index
// next changes. Take it before reading Applied.
func (f *FSM) appliedChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notify
}

// NodeAddress returns a node's client address from the replicated table.
func (f *FSM) NodeAddress(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[id]
}

// Apply implements raft.FSM for a single entry.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out, err := f.applyInTx(logs)
	if err == nil {
		return out
	}
	// The whole transaction was rolled back (by an entry's own SQL, or by
	// SQLite after an I/O error): nothing of the batch is in the file. Apply
	// entry by entry so one entry cannot take its neighbours with it.
	if !errors.Is(err, errEntryAborted) {
		f.logger.Error("batch apply failed; applying entries one by one", "err", err, "entries", len(logs))
	}
	out = make([]any, len(logs))
	for i, l := range logs {
		res, err := f.applyUntilDone(l)
		if err != nil { // stopping: apply nothing after an entry that is not applied
			for j := i; j < len(logs); j++ {
				out[j] = &Result{Err: err}
			}
			return out
		}
		out[i] = res
	}
	return out
}

// applyUntilDone applies one entry, trying again for as long as it fails:
// an entry's own SQL errors are results, recorded like successes, so an
// entry fails as a whole only when the machine failed (a full disk, an I/O
// error; see sqlitedb.Tx.Failure). Skipping it would leave this replica
// without an entry the others applied — a silent divergence — so the FSM
// waits here (the node falls behind and reports itself not ready) until
// the entry applies or the node stops.
func (f *FSM) applyUntilDone(l *raft.Log) (any, error) {
	delay := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := f.applyInTx([]*raft.Log{l})
		if err == nil {
			if attempt > 1 {
				f.logger.Warn("entry applied after failed attempts", "index", l.Index, "attempts", attempt)
			}
			return res[0], nil
		}
		if attempt == 1 || attempt%20 == 0 {
			f.logger.Error("entry apply failed; retrying it (a replica never skips an entry)",
				"index", l.Index, "attempt", attempt, "err", err)
		}
		select {
		case <-f.stop:
			return nil, fmt.Errorf("entry %d not applied (the node is stopping): %w", l.Index, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// Stop ends any wait for an entry that keeps failing (applyUntilDone), so
// Raft can shut down. Call it before stopping Raft.
func (f *FSM) Stop() {
	f.stopOnce.Do(func() { close(f.stop) })
}

// applyInTx applies logs in one transaction. It returns an error only when
// the transaction as a whole failed.
func (f *FSM) applyInTx(logs []*raft.Log) ([]any, error) {
	out := make([]any, len(logs))
	last := logs[len(logs)-1]
	if last.Index <= f.Applied() {
		for i := range out {
			out[i] = &Result{Err: errors.New("entry already applied before restart")}
		}
		return out, nil
	}
	tx, err := f.db.Begin()
	if err != nil {
		return nil, err
	}
	var nodeChanges []func(map[string]string)
	configChanged := false
	for i, l := range logs {
		if l.Index <= f.Applied() || l.Type != raft.LogCommand {
			configChanged = configChanged || l.Type == raft.LogConfiguration
			out[i] = &Result{}
			continue
		}
		// Recording the position first also starts every entry from the
		// same connection state on every replica, however entries were
		// batched: changes() is 1 and last_insert_rowid() is 0.
		if err := tx.SetApplied(sqlitedb.Position{Index: l.Index, Term: l.Term}); err != nil {
			tx.Rollback()
			return nil, err
		}
		res, change := f.applyCommand(tx, l)
		if err := tx.Failure(); err != nil { // the machine failed, not the SQL: apply it again
			tx.Rollback()
			return nil, fmt.Errorf("entry %d: %w", l.Index, err)
		}
		if change != nil {
			nodeChanges = append(nodeChanges, change)
		}
		out[i] = res
		if tx.Aborted() {
			tx.Rollback()
			if res.aborted && len(logs) == 1 {
				return f.recordAborted(l, res)
			}
			if res.aborted {
				return nil, errEntryAborted
			}
			return nil, fmt.Errorf("transaction aborted at index %d", l.Index)
		}
	}
	// The last entry has usually recorded the batch's position already.
	lastPos := sqlitedb.Position{Index: last.Index, Term: last.Term}
	if recorded, ok := tx.AppliedPosition(); !ok || recorded != lastPos {
		if err := tx.SetApplied(lastPos); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	f.batches.Add(1)
	f.entries.Add(uint64(len(logs)))
	if len(nodeChanges) > 0 { // mirror the committed node table in memory
		f.mu.Lock()
		for _, change := range nodeChanges {
			change(f.nodes)
		}
		f.mu.Unlock()
	}
	f.setApplied(last.Index)
	if len(nodeChanges) > 0 || configChanged {
		f.changes.notify()
	}
	return out, nil
}

// recordAborted records, in a transaction of its own, that an entry whose
// SQL rolled everything back has been applied: its effects are gone on
// every replica alike, and its results say why.
func (f *FSM) recordAborted(l *raft.Log, res *Result) ([]any, error) {
	tx, err := f.db.Begin()
	if err != nil {
		return nil, err
	}
	if err := tx.SetApplied(sqlitedb.Position{Index: l.Index, Term: l.Term}); err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	f.batches.Add(1)
	f.entries.Add(1)
	f.setApplied(l.Index)
	return []any{res}, nil
}

// applyCommand runs one entry inside a savepoint. When the entry changed
// the node table, it also returns the same change for the in-memory copy,
// to make once the transaction commits.
func (f *FSM) applyCommand(tx *sqlitedb.Tx, l *raft.Log) (*Result, func(map[string]string)) {
	cmd, err := f.decode(l)
	if err != nil {
		return &Result{Err: err}, nil
	}
	tx.SetClock(time.Unix(0, cmd.GetNowUnixNanos()), cmd.GetRandomSeed())
	tx.SetLimits(entryLimits(cmd))
	savepoint := needsSavepoint(cmd)
	if savepoint {
		if err := tx.Savepoint("entry"); err != nil {
			return &Result{Err: err}, nil
		}
	}
	var res *Result
	var change func(map[string]string)
	switch k := cmd.GetKind().(type) {
	case *raftlogv1.Command_Request:
		res = runStatements(tx, k.Request.GetStatements(), k.Request.GetTransaction(), false)
	case *raftlogv1.Command_Query:
		res = &Result{}
		if cmd.GetProposer() == f.id {
			res = runStatements(tx, k.Query.GetStatements(), false, true)
		}
	case *raftlogv1.Command_SetNode:
		id, addr := k.SetNode.GetId(), k.SetNode.GetGrpcAddress()
		res = &Result{Err: tx.SetNode(id, addr)}
		change = func(m map[string]string) { m[id] = addr }
	case *raftlogv1.Command_RemoveNode:
		res = &Result{Err: tx.RemoveNode(k.RemoveNode)}
		change = func(m map[string]string) { delete(m, k.RemoveNode) }
	default:
		res = &Result{Err: fmt.Errorf("entry %d: unknown command", l.Index)}
	}
	if res.aborted {
		return res, nil // nothing left to roll back to
	}
	if !savepoint {
		if res.Err != nil {
			return res, nil
		}
		return res, change
	}
	if res.Err != nil || res.rolledBack {
		if err := tx.RollbackTo("entry"); err != nil && !tx.Aborted() {
			res.Err = errors.Join(res.Err, err)
		}
		return res, nil
	}
	if err := tx.Release("entry"); err != nil {
		res.Err = err
		return res, nil
	}
	return res, change
}

// needsSavepoint reports whether applying cmd may have to undo part of what
// it did: a transactional request (its first failing statement rolls the
// entry back) and a node table change. A request without transaction never
// rolls back more than the failing statement, which SQLite's statement
// journal already undoes on its own, and a STRONG read writes nothing; for
// them a SAVEPOINT and its RELEASE would be two statements more per entry
// for nothing (a quarter of a one-INSERT entry's apply, measured by
// BenchmarkHotPathFSMApplyBatch). Every replica decides the same way from
// the same entry, so the results stay identical.
func needsSavepoint(cmd *raftlogv1.Command) bool {
	switch k := cmd.GetKind().(type) {
	case *raftlogv1.Command_Request:
		return k.Request.GetTransaction()
	case *raftlogv1.Command_Query:
		return false
	}
	return true
}

// entryLimits are the limits an entry is applied under: those its proposer
// stamped on it, or the built-in ones for entries from before limits.
func entryLimits(cmd *raftlogv1.Command) sqlitedb.Limits {
	l := cmd.GetLimits()
	if l == nil {
		return legacyEntryLimits
	}
	return sqlitedb.Limits{Steps: l.GetMaxSteps(), Rows: l.GetMaxRows(), Bytes: l.GetMaxBytes(), ResultBytes: l.GetMaxResultBytes()}
}

// runStatements runs a request's statements in order. With transaction set,
// the first failure rolls the whole entry back and the statements after it
// report that they did not run.
func runStatements(tx *sqlitedb.Tx, stmts []*sqlraftv1.Statement, transaction, readOnly bool) *Result {
	res := &Result{Results: make([]*sqlraftv1.RequestResult, 0, len(stmts))}
	failed := -1
	for i, s := range stmts {
		if failed >= 0 {
			res.Results = append(res.Results, &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Execute{
				Execute: &sqlraftv1.ExecuteResult{Error: fmt.Sprintf("not executed: transaction rolled back after statement %d failed", failed)}}})
			continue
		}
		r := tx.Run(s, readOnly)
		res.Results = append(res.Results, r)
		if tx.Aborted() {
			abortedBy(res, i, len(stmts))
			return res
		}
		if transaction && resultError(r) != "" {
			failed, res.rolledBack = i, true
		}
	}
	return res
}

// abortedBy marks a request whose statement i rolled back the whole SQLite
// transaction (INSERT OR ROLLBACK, RAISE(ROLLBACK)): the statements before
// it were undone and those after it must not run, since the connection is
// no longer inside a transaction.
func abortedBy(res *Result, i, n int) {
	res.aborted = true
	for j := 0; j < i; j++ {
		res.Results[j] = &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Execute{Execute: &sqlraftv1.ExecuteResult{
			Error: fmt.Sprintf("rolled back: statement %d rolled back the whole transaction", i)}}}
	}
	for j := i + 1; j < n; j++ {
		res.Results = append(res.Results, &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Execute{
			Execute: &sqlraftv1.ExecuteResult{Error: fmt.Sprintf("not executed: statement %d rolled back the whole transaction", i)}}})
	}
}

func resultError(r *sqlraftv1.RequestResult) string {
	if q := r.GetQuery(); q != nil {
		return q.GetError()
	}
	return r.GetExecute().GetError()
}
