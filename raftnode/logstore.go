package raftnode

import (
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// compactedWAL is the Raft log store: raft-wal, except that entries below
// FirstIndex are gone. raft-wal v0.4.0 keeps returning entries below its
// first index after a head truncation while they sit in the current
// segment; Raft then keeps feeding a lagging follower old entries instead
// of sending it the snapshot it needs. TestCompactedEntriesAreGone pins it.
type compactedWAL struct{ *raftwal.WAL }

// GetLog implements raft.LogStore, returning raft.ErrLogNotFound for
// compacted indexes.
func (w compactedWAL) GetLog(index uint64, log *raft.Log) error {
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return w.WAL.GetLog(index, log)
}
