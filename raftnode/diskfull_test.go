package raftnode_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/raftnode"
)

// TestFSMNeverSkipsAnEntryTheMachineRefused: an entry that fails because
// the disk is full (here a page cap, which SQLite reports exactly as a full
// disk) is neither recorded as applied with an error nor skipped: the FSM
// waits and applies it once space returns — or, when the node stops, gives
// up without applying anything after it. Skipping it would leave this
// replica without a write every other replica has.
func TestFSMNeverSkipsAnEntryTheMachineRefused(t *testing.T) {
	db, _, fsm := newFSM(t)
	entry := func(i uint64, sql ...string) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: command(t, false, sql...)}
	}
	fsm.ApplyBatch([]*raft.Log{entry(1, "CREATE TABLE t(b BLOB)")})
	rows := func() int64 {
		res, _, err := db.Query(context.Background(), stmts("SELECT count(*) FROM t"))
		if err != nil {
			t.Fatal(err)
		}
		return res[0].GetRows()[0].GetValues()[0].GetInteger()
	}
	apply := func(l *raft.Log) <-chan *raftnode.Result {
		done := make(chan *raftnode.Result, 1)
		go func() { done <- fsm.ApplyBatch([]*raft.Log{l})[0].(*raftnode.Result) }()
		return done
	}

	db.SetMaxPages(1) // the file may not grow: the disk is full
	done := apply(entry(2, "INSERT INTO t VALUES(randomblob(200000))"))
	select {
	case r := <-done:
		t.Fatalf("an entry the full disk refused came back (%+v, err %v) instead of waiting", r.Results, r.Err)
	case <-time.After(500 * time.Millisecond):
	}
	if fsm.Applied() != 1 || rows() != 0 {
		t.Fatalf("while the disk is full: applied %d, %d rows; want 1 and 0", fsm.Applied(), rows())
	}
	db.SetMaxPages(0) // space returns
	select {
	case r := <-done:
		if r.Err != nil || r.Results[0].GetExecute().GetError() != "" {
			t.Fatalf("after space returned: %+v, %v", r.Results, r.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the entry was not applied after space returned")
	}
	if fsm.Applied() != 2 || rows() != 1 {
		t.Fatalf("after space returned: applied %d, %d rows; want 2 and 1", fsm.Applied(), rows())
	}

	db.SetMaxPages(1)
	done = apply(entry(3, "INSERT INTO t VALUES(randomblob(200000))"))
	time.Sleep(100 * time.Millisecond)
	fsm.Stop() // the node shuts down while the disk is still full
	select {
	case r := <-done:
		if r.Err == nil {
			t.Fatal("an entry given up at shutdown reported success")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not end the wait")
	}
	if fsm.Applied() != 2 || rows() != 1 {
		t.Fatalf("after Stop: applied %d, %d rows; want 2 and 1 (the entry is applied again after the restart)", fsm.Applied(), rows())
	}
}
