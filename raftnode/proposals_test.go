package raftnode

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
)

// The FSM takes the command a local proposal encoded, found by the entry's
// bytes; an entry with equal bytes elsewhere in memory (as a follower
// receives it) is decoded, to an equal command.
func TestFSMReusesProposedCommand(t *testing.T) {
	cmd := &raftlogv1.Command{RandomSeed: 7, Kind: &raftlogv1.Command_Request{Request: &sqlraftv1.RequestRequest{
		Statements: []*sqlraftv1.Statement{{Sql: "INSERT INTO t VALUES(1)"}}}}}
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	f := &FSM{}
	forget := f.proposed.add(data, cmd)
	got, err := f.decode(&raft.Log{Index: 3, Data: data})
	if err != nil || got != cmd {
		t.Fatalf("leader's own entry: %p %v, want the proposed command %p", got, err, cmd)
	}
	received := bytes.Clone(data)
	got, err = f.decode(&raft.Log{Index: 3, Data: received})
	if err != nil || got == cmd || !proto.Equal(got, cmd) {
		t.Fatalf("received entry: %v %v", got, err)
	}
	forget()
	if got, err = f.decode(&raft.Log{Index: 3, Data: data}); err != nil || got == cmd || !proto.Equal(got, cmd) {
		t.Fatalf("after the proposal ended: %v %v", got, err)
	}
	if _, err := f.decode(&raft.Log{Index: 4, Data: []byte{0xff}}); err == nil {
		t.Fatal("garbage decoded")
	}
}
