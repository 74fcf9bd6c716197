package raftnode

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
)

// proposals lets the leader's FSM skip decoding the entries the leader
// itself proposed: on the leader, hashicorp/raft hands the FSM the very
// raft.Log its Apply call made, whose Data is the slice propose encoded, so
// the command it was encoded from is found by the address of that slice's
// bytes. Decoding a request of 1,000 statements costs about as much as
// applying it; followers, whose entries arrive through the transport,
// decode as before. The command is the one the entry's bytes encode (a
// proto3 message that encoded without error decodes to an equal one), so
// every replica applies the same thing.
type proposals struct{ m sync.Map } // unsafe.Pointer → *raftlogv1.Command

// add records cmd as the command data encodes; the returned func forgets it.
// The key holds data's bytes alive, so no other entry can take its address
// while it is recorded.
func (p *proposals) add(data []byte, cmd *raftlogv1.Command) (forget func()) {
	if len(data) == 0 {
		return func() {}
	}
	key := unsafe.Pointer(unsafe.SliceData(data))
	p.m.Store(key, cmd)
	return func() { p.m.Delete(key) }
}

// find returns the command recorded for data, if any.
func (p *proposals) find(data []byte) (*raftlogv1.Command, bool) {
	if len(data) == 0 {
		return nil, false
	}
	v, ok := p.m.Load(unsafe.Pointer(unsafe.SliceData(data)))
	if !ok {
		return nil, false
	}
	return v.(*raftlogv1.Command), true
}

// decode returns the command entry l holds.
func (f *FSM) decode(l *raft.Log) (*raftlogv1.Command, error) {
	if cmd, ok := f.proposed.find(l.Data); ok {
		return cmd, nil
	}
	cmd := &raftlogv1.Command{}
	if err := proto.Unmarshal(l.Data, cmd); err != nil {
		return nil, fmt.Errorf("decode entry %d: %w", l.Index, err)
	}
	return cmd, nil
}
