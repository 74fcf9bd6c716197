//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// retryable are the codes a client may retry: the node is down or has no
// leader (UNAVAILABLE, including NO_LEADER and OUTCOME_UNKNOWN), or the
// attempt ran out of time. Writes are idempotent (INSERT OR IGNORE on a
// client-chosen key), so an ambiguous attempt is safe to repeat.
// attemptTimeout bounds one write attempt; a client retries after it.
const attemptTimeout = 2 * time.Second

var retryable = []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Aborted}

// writer inserts rows with increasing ids, retrying retryable errors on the
// next node, and records every acknowledged id.
type writer struct {
	c      *cluster
	hosts  []string
	table  string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	next     int64
	acked    []int64
	retries  map[string]int // by code and reason
	fatal    []error
	maxStall time.Duration
	lastAck  time.Time
	rr       int
}

func newWriter(c *cluster, hosts []string, table string) *writer {
	return &writer{c: c, hosts: hosts, table: table, retries: map[string]int{}, next: 1}
}

// createTable makes the writer's table through host h.
func (w *writer) createTable(h string) {
	w.c.t.Helper()
	execSQL(w.c, h, fmt.Sprintf("CREATE TABLE %s (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", w.table))
}

// writeN writes n rows synchronously.
func (w *writer) writeN(n int) {
	w.c.t.Helper()
	for range n {
		if err := w.writeOne(context.Background()); err != nil {
			w.c.t.Fatal(err)
		}
	}
}

// start writes continuously in the background, pausing between writes.
func (w *writer) start(pause time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if err := w.writeOne(ctx); err != nil && ctx.Err() == nil {
				w.mu.Lock()
				w.fatal = append(w.fatal, err)
				w.mu.Unlock()
				return
			}
			time.Sleep(pause)
		}
	}()
}

// stop ends background writing and reports what happened.
func (w *writer) stop() {
	w.c.t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.t.Logf("writer: %d writes acknowledged, retried errors %v, longest gap between acks %s",
		len(w.acked), w.retries, w.maxStall.Round(time.Millisecond))
	for _, err := range w.fatal {
		w.c.t.Errorf("writer: non-retryable error: %v", err)
	}
}

// writeOne writes the next id, trying hosts in turn, for up to a minute.
func (w *writer) writeOne(ctx context.Context) error {
	w.mu.Lock()
	id := w.next
	w.next++
	w.mu.Unlock()
	req := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{
		Sql:    fmt.Sprintf("INSERT OR IGNORE INTO %s(id, v) VALUES(?, ?)", w.table),
		Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: id}}, {Kind: &sqlraftv1.Value_Text{Text: fmt.Sprintf("row %d", id)}}},
	}}}
	deadline := time.Now().Add(time.Minute)
	for {
		err := w.attempt(ctx, req)
		if err == nil {
			w.ack(id)
			return nil
		}
		code := status.Code(err)
		if !slices.Contains(retryable, code) {
			return fmt.Errorf("write %d: %w", id, err)
		}
		w.mu.Lock()
		w.retries[code.String()+reason(err)]++
		w.mu.Unlock()
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("write %d: still failing after retries: %w", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *writer) attempt(ctx context.Context, req *sqlraftv1.ExecuteRequest) error {
	w.mu.Lock()
	h := w.hosts[w.rr%len(w.hosts)]
	w.rr++
	w.mu.Unlock()
	cc, err := w.c.conn(h)
	if err != nil { // the container is stopped or disconnected
		return status.Error(codes.Unavailable, err.Error())
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := sqlraftv1.NewDatabaseServiceClient(cc).Execute(actx, req)
	if err != nil {
		w.c.forget(h)
		return err
	}
	if e := resp.GetResults()[0].GetError(); e != "" {
		return errors.New("statement error: " + e)
	}
	return nil
}

func (w *writer) ack(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if !w.lastAck.IsZero() && now.Sub(w.lastAck) > w.maxStall {
		w.maxStall = now.Sub(w.lastAck)
	}
	w.lastAck = now
	w.acked = append(w.acked, id)
}

// ackedIDs returns the acknowledged ids so far.
func (w *writer) ackedIDs() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// lastAckTime is when the latest write was acknowledged.
func (w *writer) lastAckTime() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAck
}

// verify checks that every acknowledged id is in the table, reading at
// LINEARIZABLE through host h.
func (w *writer) verify(h string) {
	w.c.t.Helper()
	present := map[int64]bool{}
	for _, r := range queryRows(w.c, h, sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, "SELECT id FROM "+w.table) {
		present[r.GetValues()[0].GetInteger()] = true
	}
	var lost []int64
	for _, id := range w.ackedIDs() {
		if !present[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		w.c.t.Fatalf("%d acknowledged writes lost, e.g. %v", len(lost), lost[:min(10, len(lost))])
	}
	w.c.t.Logf("all %d acknowledged writes present (%d rows in %s)", len(w.acked), len(present), w.table)
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(interface{ GetReason() string }); ok && info.GetReason() != "" {
			return "/" + info.GetReason()
		}
	}
	return ""
}

// execSQL runs statements through host h and fails the test on any error.
func execSQL(c *cluster, h string, stmts ...string) *sqlraftv1.ExecuteResponse {
	c.t.Helper()
	req := &sqlraftv1.ExecuteRequest{}
	for _, s := range stmts {
		req.Statements = append(req.Statements, &sqlraftv1.Statement{Sql: s})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.db(h).Execute(ctx, req)
	if err != nil {
		c.t.Fatalf("execute on %s: %v", h, err)
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != "" {
			c.t.Fatalf("execute on %s: statement %d: %s", h, i, r.GetError())
		}
	}
	return resp
}

// queryRows runs one SELECT on host h at a consistency level.
func queryRows(c *cluster, h string, level sqlraftv1.ReadConsistency, sql string) []*sqlraftv1.Row {
	c.t.Helper()
	resp, err := query(c, h, level, sql)
	if err != nil {
		c.t.Fatalf("query on %s at %s: %v", h, level, err)
	}
	return resp.GetResults()[0].GetRows()
}

func query(c *cluster, h string, level sqlraftv1.ReadConsistency, sql string) (*sqlraftv1.QueryResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.db(h).Query(ctx, &sqlraftv1.QueryRequest{
		Statements: []*sqlraftv1.Statement{{Sql: sql}}, Consistency: level})
	if err != nil {
		return nil, err
	}
	if e := resp.GetResults()[0].GetError(); e != "" {
		return nil, errors.New(e)
	}
	return resp, nil
}

// levels are every read consistency a client can ask for.
var levels = slices.Sorted(maps.Keys(map[sqlraftv1.ReadConsistency]bool{
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_UNSPECIFIED:  true,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE:         true,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_WEAK:         true,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE: true,
	sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG:       true,
}))
