package raftlog

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// filer is raft-wal's segment filer, noting a tail segment that recovery
// finds sealed. raft-wal seals a full segment by writing its index with the
// last append, then rotates in the background: it records the seal in its
// metadata and starts the next segment. Closed (or crashed, or failed)
// between the two, it reopens with metadata calling the tail unsealed and a
// file saying sealed, and v0.4.0 then refuses every append (ErrSealed).
type filer struct {
	*segment.Filer
	sealedTail *types.SegmentInfo // the tail as its file says, when sealed
}

// RecoverTail implements types.SegmentFiler.
func (f *filer) RecoverTail(info types.SegmentInfo) (types.SegmentWriter, error) {
	w, err := f.Filer.RecoverTail(info)
	if err != nil {
		return w, err
	}
	if sealed, indexStart, err := w.Sealed(); err == nil && sealed {
		si := info
		si.IndexStart, si.MaxIndex = indexStart, w.LastIndex()
		f.sealedTail = &si
	}
	return w, nil
}

// completeRotation does what raft-wal's rotation would have done for the
// sealed tail: it marks it sealed in the metadata and appends the next,
// empty, segment (raft-wal creates its file when it opens). It first reads
// every entry of the sealed segment through its index, so that an index
// that did not reach the disk intact is an error, not a log serving wrong
// entries.
func (s *Store) completeRotation(sealed types.SegmentInfo) error {
	state, err := s.wm.Load(s.dir)
	if err != nil {
		return err
	}
	n := len(state.Segments)
	if n == 0 || state.Segments[n-1].ID != sealed.ID || !state.Segments[n-1].SealTime.IsZero() {
		return fmt.Errorf("segment %d is not the unsealed tail of the metadata", sealed.ID)
	}
	if sealed.MaxIndex < sealed.MinIndex {
		return fmt.Errorf("sealed tail segment %d holds no entries (last %d, first %d)", sealed.ID, sealed.MaxIndex, sealed.MinIndex)
	}
	sealed.SealTime = time.Now()
	if err := s.checkSealed(sealed); err != nil {
		return err
	}
	state.Segments[n-1] = sealed
	state.Segments = append(state.Segments, types.SegmentInfo{
		ID: state.NextSegmentID, BaseIndex: sealed.MaxIndex + 1, MinIndex: sealed.MaxIndex + 1,
		SizeLimit: uint32(s.opts.SegmentSize), Codec: raftwal.CodecBinaryV1, CreateTime: time.Now(),
	})
	state.NextSegmentID++
	return s.wm.CommitState(state)
}

// checkSealed reads every entry of a sealed segment through its index.
func (s *Store) checkSealed(info types.SegmentInfo) error {
	r, err := segment.NewFiler(s.dir, s.vfs).Open(info)
	if err != nil {
		return err
	}
	defer r.Close()
	var codec raftwal.BinaryCodec
	for i := info.MinIndex; i <= info.MaxIndex; i++ {
		buf, err := r.GetLog(i)
		if err != nil {
			return fmt.Errorf("sealed tail segment %d, entry %d: %w", info.ID, i, err)
		}
		var l raft.Log
		err = codec.Decode(buf.Bs, &l)
		buf.Close()
		if err == nil && l.Index != i {
			err = fmt.Errorf("holds index %d", l.Index)
		}
		if err != nil {
			return fmt.Errorf("sealed tail segment %d, entry %d: %w", info.ID, i, err)
		}
	}
	return nil
}
