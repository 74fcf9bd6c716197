package raftnode

import (
	"context"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// The data path: every client request reaches the database through these
// methods, which validate statements once and pick the path (the log, or a
// local read made safe at the requested consistency). A method that needs
// the leader and is called elsewhere returns ErrNotLeader (or ErrNoLeader)
// before anything ran, so the caller can forward the request.

// InvalidError is a client mistake in one statement, found before anything
// ran: bad parameters, a syntax error, a refused operation, or a write sent
// as a read.
type InvalidError = sqlitedb.InvalidError

// Errors of the data path besides those in apply.go.
var (
	// ErrResultTooLarge: a query's rows exceed the result bound; narrow the
	// query or stream it.
	ErrResultTooLarge = sqlitedb.ErrResultTooLarge
	// ErrTooManyStreams: every stream connection is busy.
	ErrTooManyStreams = sqlitedb.ErrTooManyStreams
	// ErrStreamStopped: a database swap (snapshot install) or shutdown
	// stopped the stream.
	ErrStreamStopped = sqlitedb.ErrStreamStopped
	// ErrClosed: the database is closed (the node is shutting down).
	ErrClosed = sqlitedb.ErrClosed
)

// Read says how a read is served: its consistency level (resolved: not
// UNSPECIFIED) and, for NONE, how stale a follower may be (0: any).
type Read struct {
	Level     sqlraftv1.ReadConsistency
	Freshness time.Duration
	// MinIndex, when not 0, is the Raft index the read must reflect: the
	// node that serves it waits until it has applied it (minindex.go).
	MinIndex uint64
}

// needsLeader reports whether r can be served only by the leader.
func (r Read) needsLeader() bool { return r.Level != sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE }

// Execute validates stmts and applies them through the log. Leader only.
func (n *Node) Execute(ctx context.Context, stmts []*sqlraftv1.Statement, transaction bool) (*Applied, error) {
	if !n.IsLeader() {
		return nil, n.notLeader()
	}
	if _, err := n.db.Inspect(ctx, stmts); err != nil {
		return nil, err
	}
	return n.Write(ctx, &sqlraftv1.RequestRequest{Statements: stmts, Transaction: transaction})
}

// Query runs read-only statements as r says: STRONG through the log, the
// other levels on this node's database once the level's check passed.
// Statements are validated in the same pass that prepares them.
func (n *Node) Query(ctx context.Context, r Read, stmts []*sqlraftv1.Statement) ([]*sqlraftv1.QueryResult, uint64, error) {
	if r.needsLeader() && !n.IsLeader() {
		return nil, 0, n.notLeader()
	}
	if r.Level == sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG {
		kinds, err := n.db.Inspect(ctx, stmts)
		if err != nil {
			return nil, 0, err
		}
		for i, k := range kinds {
			if k == sqlitedb.Write {
				return nil, 0, &InvalidError{Index: i, Reason: "is not read-only; send writes with Execute or Request"}
			}
		}
	}
	return n.query(ctx, r, stmts)
}

// query runs statements known to be read-only (or to be judged when they
// run) at r.
func (n *Node) query(ctx context.Context, r Read, stmts []*sqlraftv1.Statement) ([]*sqlraftv1.QueryResult, uint64, error) {
	if err := n.waitIndex(ctx, r.MinIndex); err != nil {
		return nil, 0, err
	}
	if r.Level == sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG {
		applied, err := n.StrongRead(ctx, &sqlraftv1.QueryRequest{Statements: stmts, Consistency: r.Level})
		if err != nil {
			return nil, 0, err
		}
		out := make([]*sqlraftv1.QueryResult, len(applied.Results))
		for i, res := range applied.Results {
			out[i] = res.GetQuery()
			if out[i] == nil {
				out[i] = &sqlraftv1.QueryResult{Error: res.GetExecute().GetError()}
			}
		}
		return out, applied.Index, nil
	}
	index, err := n.prepareRead(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	qctx, cancel := n.withQueryTime(ctx)
	defer cancel()
	results, pos, err := n.db.Query(qctx, stmts)
	return results, max(index, pos.Index, r.MinIndex), n.queryTimeError(qctx, err)
}

// Request validates stmts once and serves them: as a read at r when every
// statement only reads, otherwise through the log (leader only).
//
// allow, when set, is called once the statements are classified, before
// anything runs, with whether every one only reads; its error stops the
// request (the server checks a caller's permission there, so the
// statements are classified once, by the node that serves them).
func (n *Node) Request(ctx context.Context, r Read, req *sqlraftv1.RequestRequest, allow func(readOnly bool) error) (*Applied, error) {
	stmts := req.GetStatements()
	if r.needsLeader() && !n.IsLeader() {
		// Reads at this level and writes alike need the leader: forward
		// before validating, so the request is validated once, there.
		return nil, n.notLeader()
	}
	kinds, err := n.db.Inspect(ctx, stmts)
	if err != nil {
		return nil, err
	}
	readOnly := true
	for _, k := range kinds {
		readOnly = readOnly && k == sqlitedb.ReadOnly
	}
	if allow != nil {
		if err := allow(readOnly); err != nil {
			return nil, err
		}
	}
	if !readOnly && !n.IsLeader() { // a NONE-level request that writes
		return nil, n.notLeader()
	}
	if !readOnly {
		return n.Write(ctx, &sqlraftv1.RequestRequest{Statements: stmts, Transaction: req.GetTransaction()})
	}
	results, index, err := n.query(ctx, r, stmts)
	if err != nil {
		return nil, err
	}
	out := &Applied{Index: index, Term: n.term()}
	for _, q := range results {
		out.Results = append(out.Results, &sqlraftv1.RequestResult{Result: &sqlraftv1.RequestResult_Query{Query: q}})
	}
	return out, nil
}

// Stream runs one read-only statement at r (STRONG is served as
// LINEARIZABLE: a stream cannot go through the log) on a connection of its
// own and hands its rows to send in batches of batchSize, with the
// index the data reflects. MaxQueryTime bounds the time between two
// batches, not counting the time send takes.
func (n *Node) Stream(ctx context.Context, r Read, stmt *sqlraftv1.Statement, batchSize int,
	send func(index uint64, cols, types []string, rows []*sqlraftv1.Row) error) error {
	if r.needsLeader() && !n.IsLeader() {
		return n.notLeader()
	}
	if err := n.waitIndex(ctx, r.MinIndex); err != nil {
		return err
	}
	index, err := n.prepareRead(ctx, r)
	if err != nil {
		return err
	}
	sctx, clock, stop := n.newStreamClock(ctx)
	defer stop()
	err = n.db.QueryStream(sctx, stmt, batchSize,
		func(pos sqlitedb.Position, cols, types []string, rows []*sqlraftv1.Row) error {
			return clock.sending(func() error { return send(max(index, pos.Index, r.MinIndex), cols, types, rows) })
		})
	return n.queryTimeError(sctx, err)
}

// prepareRead makes a local read safe at r (NONE, WEAK or LINEARIZABLE)
// and returns the index it is known to reflect.
func (n *Node) prepareRead(ctx context.Context, r Read) (uint64, error) {
	switch r.Level {
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE:
		return 0, n.FreshRead(r.Freshness)
	case sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK:
		return 0, n.WeakRead(ctx)
	default:
		return n.LinearizableRead(ctx)
	}
}
