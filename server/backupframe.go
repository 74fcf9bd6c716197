package server

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// backupFrame is a BackupResponse whose data the codec (decodeCodec) hands
// to the transport as it is: the protobuf encoding of a message is its
// fields one after another, so the response is its header field (small,
// encoded as usual) followed by the data field's tag and length, then the
// data itself. Encoding a 1 MiB chunk into a new buffer was a copy of every
// byte of a backup on the leader. release gives the data's buffer back once
// the transport has written it.
type backupFrame struct {
	header  *sqlraftv1.ResponseHeader
	data    []byte
	release func()
}

// marshal returns the frame's encoding: a small buffer, then data.
func (f *backupFrame) marshal() (mem.BufferSlice, error) {
	var prefix []byte
	if f.header != nil {
		h, err := proto.Marshal(f.header)
		if err != nil {
			f.release()
			return nil, err
		}
		prefix = protowire.AppendTag(prefix, 1, protowire.BytesType)
		prefix = protowire.AppendBytes(prefix, h)
	}
	if len(f.data) == 0 { // proto3 leaves an empty bytes field out
		f.release()
		return mem.BufferSlice{mem.SliceBuffer(prefix)}, nil
	}
	prefix = protowire.AppendTag(prefix, 2, protowire.BytesType)
	prefix = protowire.AppendVarint(prefix, uint64(len(f.data)))
	data := f.data
	if mem.IsBelowBufferPoolingThreshold(cap(data)) { // NewBuffer would not give it back: copy it
		data = append([]byte(nil), data...)
		f.release()
		return mem.BufferSlice{mem.SliceBuffer(prefix), mem.SliceBuffer(data)}, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(prefix), mem.NewBuffer(&data, releasePool{f.release})}, nil
}

// releasePool is the BufferPool of one backupFrame's data: the transport
// puts the buffer back once its last reference is gone, which releases it.
type releasePool struct{ release func() }

func (p releasePool) Get(int) *[]byte { panic("releasePool only takes buffers back") }
func (p releasePool) Put(*[]byte)     { p.release() }

var _ mem.BufferPool = releasePool{}
