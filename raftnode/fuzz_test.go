package raftnode_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

// FuzzApply applies arbitrary bytes as the data of a Raft log entry to a
// real FSM over a database, alone or in one batch between two valid
// entries (alone picks which). Properties:
//
//   - nothing panics, and the entry gets a *Result: an error (bytes that do
//     not decode to a Command, an unknown command, ...) or, for a request,
//     one result per statement, every one of which marshals;
//   - the entry cannot take its neighbours in the batch with it: both apply,
//     whatever the entry's SQL does (even when it rolls back the whole
//     SQLite transaction), and the FSM reports the last index applied;
//   - the FSM stays usable: a valid entry after it runs its statement.
//
// Entries are applied under limits clamped to small bounds (see bounded), so
// no input runs unbounded. One database serves every input of a fuzzing
// process; it starts with a fixture (table t) and is emptied again when it
// grows past fuzzMaxDBBytes.
func FuzzApply(f *testing.F) {
	for _, cmd := range applySeeds() {
		data, err := proto.Marshal(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Add([]byte{0xff, 0x01}, false)
	e := newApplyEnv(f)
	f.Fuzz(func(t *testing.T, data []byte, alone bool) {
		e.maybeEmpty(t)
		data, cmd := bounded(data)
		l := e.entry(data)
		batch := []*raft.Log{l}
		if !alone {
			batch = []*raft.Log{e.entry(e.setNode("before")), l, e.entry(e.setNode("after"))}
		}
		out := e.fsm.ApplyBatch(batch)
		if len(out) != len(batch) {
			t.Fatalf("%d results for %d entries", len(out), len(batch))
		}
		checkResult(t, out[slices.Index(batch, l)], cmd)
		if !alone {
			e.checkNeighbours(t, batch, out, cmd)
		}
		if got := e.fsm.Applied(); got != e.index {
			t.Fatalf("applied %d, want %d", got, e.index)
		}
		e.checkUsable(t)
	})
}

// applySeeds are commands of every kind, and the edge cases of each.
func applySeeds() []*raftlogv1.Command {
	req := func(tx bool, stmts ...*sqlraftv1.Statement) *raftlogv1.Command {
		return &raftlogv1.Command{NowUnixNanos: 1_700_000_000_000_000_000, RandomSeed: 7, Proposer: "n1",
			Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{Statements: stmts, Transaction: tx}}}
	}
	query := func(proposer string, stmts ...*sqlraftv1.Statement) *raftlogv1.Command {
		return &raftlogv1.Command{Proposer: proposer, Kind: &raftlogv1.Command_Query{Query: &sqlraftv1.QueryRequest{
			Statements: stmts, Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_STRONG}}}
	}
	s := func(sql string, params ...*sqlraftv1.Value) *sqlraftv1.Statement {
		return &sqlraftv1.Statement{Sql: sql, Params: params}
	}
	integer := func(v int64) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: v}} }
	named := s("UPDATE t SET v = :v WHERE id = :id")
	named.NamedParams = map[string]*sqlraftv1.Value{"v": {Kind: &sqlraftv1.Value_Blob{Blob: []byte{1, 2}}}, ":id": integer(1)}
	limited := req(false, s(endlessInsert))
	limited.Limits = &raftlogv1.EntryLimits{MaxSteps: 5000, MaxRows: 10, MaxBytes: 100, MaxResultBytes: 50}
	return []*raftlogv1.Command{
		req(false, s("INSERT INTO t(v) VALUES(?), (?)", integer(1), &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: "x"}}),
			s("SELECT id, v FROM t ORDER BY id DESC LIMIT 2"), named),
		req(true, s("INSERT INTO t(v) VALUES(random())"), s("INSERT INTO nosuch VALUES(1)"), s("DELETE FROM t")),
		req(false, s("CREATE TABLE IF NOT EXISTS u(k UNIQUE, w)"), s("INSERT OR ROLLBACK INTO u VALUES(1, datetime('now'))"),
			s("INSERT OR ROLLBACK INTO u VALUES(1, 2)"), s("SELECT 1")),
		req(false, s("SELECT ?", &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}),
			s("SELECT ?", &sqlraftv1.Value{}), s("BEGIN"), s("SELECT * FROM _sqlraft_applied"), s("\x00")),
		limited,
		query("n1", s("SELECT count(*), total(length(v)) FROM t")),
		query("n2", s("SELECT 1")),
		query("n1", s("DELETE FROM t")),
		{Kind: &raftlogv1.Command_SetNode{SetNode: &raftlogv1.NodeAddress{Id: "n3", GrpcAddress: "127.0.0.1:1"}}},
		{Kind: &raftlogv1.Command_RemoveNode{RemoveNode: "n3"}},
		{NowUnixNanos: math.MinInt64, RandomSeed: math.MaxUint64},
		{Limits: &raftlogv1.EntryLimits{MaxSteps: math.MaxUint64}, Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{}}},
	}
}

// endlessInsert inserts rows until a limit stops it.
const endlessInsert = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t(v) SELECT x FROM c"

// fuzzCaps bound the limits an entry is applied under.
var fuzzCaps = raftlogv1.EntryLimits{MaxSteps: 2_000_000, MaxRows: 100, MaxBytes: 16 << 10, MaxResultBytes: 1 << 20}

// bounded returns data as the FSM is to see it, and the command it decodes
// to (nil if none). Data that does not decode is unchanged. A command's
// limits are clamped into [1, fuzzCaps], since zero means no limit and an
// entry without limits gets the legacy, nearly unbounded ones: the clamped
// limits are appended as a second Command message, which protobuf merges
// into the first, so the rest of the input is decoded exactly as given.
func bounded(data []byte) ([]byte, *raftlogv1.Command) {
	var cmd raftlogv1.Command
	if proto.Unmarshal(data, &cmd) != nil {
		return data, nil
	}
	l := cmd.GetLimits()
	clamp := func(v, limit uint64) uint64 { return min(max(v, 1), limit) }
	extra, err := proto.Marshal(&raftlogv1.Command{Limits: &raftlogv1.EntryLimits{
		MaxSteps: clamp(l.GetMaxSteps(), fuzzCaps.MaxSteps), MaxRows: clamp(l.GetMaxRows(), fuzzCaps.MaxRows),
		MaxBytes: clamp(l.GetMaxBytes(), fuzzCaps.MaxBytes), MaxResultBytes: clamp(l.GetMaxResultBytes(), fuzzCaps.MaxResultBytes)}})
	if err != nil {
		panic(err)
	}
	data = append(bytes.Clone(data), extra...)
	if err := proto.Unmarshal(data, &cmd); err != nil {
		panic(err)
	}
	return data, &cmd
}

// checkResult checks what applying one entry returned; cmd is the command
// its data decodes to, or nil.
func checkResult(t *testing.T, out any, cmd *raftlogv1.Command) {
	t.Helper()
	res, ok := out.(*raftnode.Result)
	if !ok || res == nil {
		t.Fatalf("apply returned %T %v, want a *Result", out, out)
	}
	for _, r := range res.Results {
		if _, err := proto.Marshal(r); err != nil {
			t.Fatalf("a result does not marshal: %v", err)
		}
	}
	if res.Err != nil {
		return
	}
	want := 0
	switch k := cmd.GetKind().(type) {
	case nil:
		t.Fatalf("an entry that is not a command (decoded: %v) applied without an error", cmd != nil)
	case *raftlogv1.Command_Request:
		want = len(k.Request.GetStatements())
	case *raftlogv1.Command_Query:
		if cmd.GetProposer() == "n1" {
			want = len(k.Query.GetStatements())
		}
	}
	if len(res.Results) != want {
		t.Fatalf("%d results for a command that wants %d", len(res.Results), want)
	}
}

// applyEnv is one fuzzing process's FSM and the index of its last entry.
type applyEnv struct {
	db    *sqlitedb.DB
	fsm   *raftnode.FSM
	index uint64
}

// fuzzMaxDBBytes is the size past which the database is emptied.
const fuzzMaxDBBytes = 64 << 20

func newApplyEnv(f *testing.F) *applyEnv {
	dir := f.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dir, "db.sqlite"), sqlitedb.Options{MaxResultBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	store, err := snapshot.New(filepath.Join(dir, "snapshots"), snapshot.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	fsm, err := raftnode.NewFSM("n1", db, store, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	e := &applyEnv{db: db, fsm: fsm}
	e.fixture(f)
	return e
}

// fixture creates table t, which the seeds use.
func (e *applyEnv) fixture(t testing.TB) {
	data, err := proto.Marshal(&raftlogv1.Command{Limits: &fuzzCaps, Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{
		Statements: stmts("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)", "INSERT INTO t(v) VALUES('one'), (2)")}}})
	if err != nil {
		t.Fatal(err)
	}
	res := e.fsm.Apply(e.entry(data)).(*raftnode.Result)
	for _, r := range res.Results {
		if msg := r.GetExecute().GetError(); res.Err != nil || msg != "" {
			t.Fatalf("fixture: %v %s", res.Err, msg)
		}
	}
}

// entry returns a command entry holding data at the next index.
func (e *applyEnv) entry(data []byte) *raft.Log {
	e.index++
	return &raft.Log{Index: e.index, Term: 1, Type: raft.LogCommand, Data: data}
}

// setNode encodes a SetNode command recording the next entry's index as
// node id's address.
func (e *applyEnv) setNode(id string) []byte {
	data, err := proto.Marshal(&raftlogv1.Command{Kind: &raftlogv1.Command_SetNode{SetNode: &raftlogv1.NodeAddress{
		Id: id, GrpcAddress: fmt.Sprint(e.index + 1)}}})
	if err != nil {
		panic(err)
	}
	return data
}

// checkNeighbours checks that the entries before and after the fuzzed one
// applied.
func (e *applyEnv) checkNeighbours(t *testing.T, batch []*raft.Log, out []any, cmd *raftlogv1.Command) {
	for _, i := range []int{0, 2} {
		if r, ok := out[i].(*raftnode.Result); !ok || r.Err != nil {
			t.Fatalf("neighbour entry %d: %v", batch[i].Index, out[i])
		}
	}
	touches := cmd.GetSetNode().GetId() == "before" || cmd.GetRemoveNode() == "before"
	if got, want := e.fsm.NodeAddress("before"), fmt.Sprint(batch[0].Index); got != want && !touches {
		t.Fatalf("the entry before the fuzzed one did not apply: address %q, want %q", got, want)
	}
	if got, want := e.fsm.NodeAddress("after"), fmt.Sprint(batch[2].Index); got != want {
		t.Fatalf("the entry after the fuzzed one did not apply: address %q, want %q", got, want)
	}
}

// checkUsable applies a valid entry and checks that its statement ran.
func (e *applyEnv) checkUsable(t *testing.T) {
	l := e.entry(nil)
	var err error
	l.Data, err = proto.Marshal(&raftlogv1.Command{Limits: &fuzzCaps, Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{
		Statements: []*sqlraftv1.Statement{{Sql: "SELECT ?", Params: []*sqlraftv1.Value{
			{Kind: &sqlraftv1.Value_Integer{Integer: int64(l.Index)}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, ok := e.fsm.Apply(l).(*raftnode.Result)
	if !ok || res.Err != nil || len(res.Results) != 1 {
		t.Fatalf("the entry after the fuzzed one failed: %+v", res)
	}
	if got := res.Results[0].GetQuery().GetRows(); len(got) != 1 || got[0].GetValues()[0].GetInteger() != int64(l.Index) {
		t.Fatalf("the entry after the fuzzed one: %v", res.Results[0])
	}
}

// maybeEmpty drops every client table and view once the database has grown
// past fuzzMaxDBBytes (their pages are reused after that), and recreates
// the fixture.
func (e *applyEnv) maybeEmpty(t *testing.T) {
	if e.db.Size() < fuzzMaxDBBytes {
		return
	}
	res, _, err := e.db.Query(context.Background(), stmts(`SELECT 'DROP ' || type || ' IF EXISTS "' || replace(name, '"', '""') || '"'
		FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_sqlraft%' ESCAPE '\'`))
	if err != nil {
		t.Fatal(err)
	}
	var drops []string
	for _, row := range res[0].GetRows() {
		drops = append(drops, row.GetValues()[0].GetText())
	}
	data, err := proto.Marshal(&raftlogv1.Command{Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{Statements: stmts(drops...)}}})
	if err != nil {
		t.Fatal(err)
	}
	e.fsm.Apply(e.entry(data))
	e.fixture(t)
}
