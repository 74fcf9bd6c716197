package raftlog

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// filer is raft-wal's segment filer (segment.Filer) with two repairs for
// raft-wal v0.4.0, both reachable through the SegmentFiler seam:
//
//   - a segment sealed by a tail truncation has no index block: raft-wal
//     records the seal in its metadata without writing the index (fixed
//     upstream after v0.4.0, hashicorp/raft-wal#31), so once reopened every
//     entry in it is unreadable ("sealed segment has no index block"). Open
//     reads such a segment through, as recovery reads a tail, and serves its
//     entries from the index that builds in memory.
//   - a tail segment whose file is sealed but whose metadata is not:
//     raft-wal seals a full segment by writing its index with the last
//     append, then rotates in the background (records the seal, starts the
//     next segment). Closed, crashed or failed between the two, it reopens
//     with a tail that refuses every append (ErrSealed). RecoverTail notes
//     it, and Store.openWAL completes the rotation.
//
// It also keeps the tail's writer, so that the store can tell whether a
// rotation is pending (Store.settleRotationLocked).
type filer struct {
	*segment.Filer
	sealedTail *types.SegmentInfo // the tail as its file says, when sealed

	mu   sync.Mutex
	tail types.SegmentWriter // the last writer created or recovered
}

// Create implements types.SegmentFiler.
func (f *filer) Create(info types.SegmentInfo) (types.SegmentWriter, error) {
	w, err := f.Filer.Create(info)
	if err == nil {
		f.setTail(w)
	}
	return w, err
}

func (f *filer) setTail(w types.SegmentWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tail = w
}

// tailSealed reports whether the tail's last append sealed it: raft-wal's
// rotation is then pending (or failed). The caller must exclude appends.
func (f *filer) tailSealed() bool {
	f.mu.Lock()
	w := f.tail
	f.mu.Unlock()
	if w == nil {
		return false
	}
	sealed, _, err := w.Sealed()
	return sealed || err != nil
}

// Open implements types.SegmentFiler: a sealed segment without an index
// block is read through and served from an in-memory index; raft-wal never
// appends to a segment it opened with Open.
func (f *filer) Open(info types.SegmentInfo) (types.SegmentReader, error) {
	if info.IndexStart != 0 {
		return f.Filer.Open(info)
	}
	w, err := f.Filer.RecoverTail(info)
	if err != nil {
		return nil, fmt.Errorf("read sealed segment %d without an index: %w", info.ID, err)
	}
	if last := w.LastIndex(); last < info.MaxIndex {
		w.Close()
		return nil, fmt.Errorf("%w: sealed segment %d ends at %d, its metadata at %d", types.ErrCorrupt, info.ID, last, info.MaxIndex)
	}
	return w, nil
}

// RecoverTail implements types.SegmentFiler.
func (f *filer) RecoverTail(info types.SegmentInfo) (types.SegmentWriter, error) {
	w, err := f.Filer.RecoverTail(info)
	if err != nil {
		return w, err
	}
	f.setTail(w)
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
