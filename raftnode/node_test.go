package raftnode_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/snapshot"
)

func stmts(sql ...string) []*sqlraftv1.Statement {
	out := make([]*sqlraftv1.Statement, len(sql))
	for i, s := range sql {
		out[i] = &sqlraftv1.Statement{Sql: s}
	}
	return out
}

// TestConcurrentLinearizableReadsShareRounds checks that many reads waiting
// at once are confirmed by far fewer quorum rounds.
func TestConcurrentLinearizableReadsShareRounds(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.leader().Raft
	before := leader.Status()
	const reads = 64
	var wg sync.WaitGroup
	for i := 0; i < reads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := leader.LinearizableRead(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	after := leader.Status()
	gotReads, rounds := after.LinearizableReads-before.LinearizableReads, after.ReadIndexRounds-before.ReadIndexRounds
	if gotReads != reads || rounds >= reads/2 {
		t.Fatalf("%d reads took %d rounds; want them to share rounds", gotReads, rounds)
	}
	t.Logf("%d concurrent reads, %d confirmation rounds", gotReads, rounds)
}

// TestLinearizableReadOnFollowerFails checks that a follower refuses.
func TestLinearizableReadOnFollowerFails(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.followers()[0].Raft
	if _, err := f.LinearizableRead(context.Background()); err != raftnode.ErrNotLeader {
		t.Fatalf("got %v, want ErrNotLeader", err)
	}
}

func command(t *testing.T, transaction bool, sql ...string) []byte {
	t.Helper()
	b, err := proto.Marshal(&raftlogv1.Command{NowUnixNanos: 1, RandomSeed: 2, Kind: &raftlogv1.Command_Request{
		Request: &sqlraftv1.RequestRequest{Statements: stmts(sql...), Transaction: transaction}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFSM returns an FSM over a fresh database and snapshot store, closed
// when the test ends.
func newFSM(t *testing.T) (*sqlitedb.DB, *snapshot.Store, *raftnode.FSM) {
	t.Helper()
	db, err := sqlitedb.Open(t.TempDir()+"/db.sqlite", sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := snapshot.New(t.TempDir(), snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fsm, err := raftnode.NewFSM("n1", db, store, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return db, store, fsm
}

// TestFSMBatchKeepsEntriesAtomic applies one batch holding a good entry, a
// failing transaction and another good entry, then replays it as Raft would
// after a restart.
func TestFSMBatchKeepsEntriesAtomic(t *testing.T) {
	db, store, fsm := newFSM(t)
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: command(t, false, "CREATE TABLE t(v UNIQUE)", "INSERT INTO t VALUES(1)")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: command(t, true, "INSERT INTO t VALUES(2)", "INSERT INTO t VALUES(1)")},
		{Index: 3, Term: 1, Type: raft.LogConfiguration},
		{Index: 4, Term: 1, Type: raft.LogCommand, Data: command(t, false, "INSERT INTO t VALUES(3)")},
	}
	out := fsm.ApplyBatch(logs)
	if r := out[1].(*raftnode.Result); r.Err != nil || r.Results[1].GetExecute().GetError() == "" {
		t.Fatalf("failing transaction: %+v", r)
	}
	if fsm.Applied() != 4 {
		t.Fatalf("applied %d, want 4", fsm.Applied())
	}
	rows := func() int64 {
		res, _, err := db.Query(context.Background(), stmts("SELECT count(*) FROM t"))
		if err != nil {
			t.Fatal(err)
		}
		return res[0].GetRows()[0].GetValues()[0].GetInteger()
	}
	if n := rows(); n != 2 {
		t.Fatalf("%d rows, want 2 (1 and 3; the failed transaction's 2 rolled back)", n)
	}
	// A new FSM on the same file knows where it is and skips a replay.
	fsm2, err := raftnode.NewFSM("n1", db, store, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	fsm2.ApplyBatch(logs)
	if n := rows(); n != 2 || fsm2.Applied() != 4 {
		t.Fatalf("after replay: %d rows at %d, want 2 at 4", n, fsm2.Applied())
	}
}

// TestEntryThatRollsBackEverything applies a batch in which the middle
// entry's SQL rolls back the whole SQLite transaction (INSERT OR ROLLBACK):
// its neighbours must apply exactly once, it must apply not at all, and its
// results must say so.
func TestEntryThatRollsBackEverything(t *testing.T) {
	db, _, fsm := newFSM(t)
	fsm.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: command(t, false,
		"CREATE TABLE u(k UNIQUE)", "CREATE TABLE v(x)", "INSERT INTO u VALUES(1)")}})
	out := fsm.ApplyBatch([]*raft.Log{
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: command(t, false, "INSERT INTO v VALUES('before')")},
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: command(t, false,
			"INSERT INTO v VALUES('undone')", "INSERT OR ROLLBACK INTO u VALUES(1)", "INSERT INTO v VALUES('never')")},
		{Index: 4, Term: 1, Type: raft.LogCommand, Data: command(t, false, "INSERT INTO v VALUES(last_insert_rowid())")},
	})
	r := out[1].(*raftnode.Result)
	if r.Err != nil || len(r.Results) != 3 || r.Results[0].GetExecute().GetError() == "" ||
		r.Results[1].GetExecute().GetError() == "" || r.Results[2].GetExecute().GetError() == "" {
		t.Fatalf("aborting entry's results: %+v", r)
	}
	res, _, err := db.Query(context.Background(), stmts("SELECT group_concat(x, ',') FROM v"))
	if err != nil {
		t.Fatal(err)
	}
	// Entry 4 sees last_insert_rowid() = 0 whatever ran before it.
	if got := res[0].GetRows()[0].GetValues()[0].GetText(); got != "before,0" {
		t.Fatalf("v holds %q, want \"before,0\"", got)
	}
	if fsm.Applied() != 4 {
		t.Fatalf("applied %d, want 4", fsm.Applied())
	}
}
