package main

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// split cuts b into buffers of at most n bytes, as HTTP/2 frames arrive.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

// TestBackupCodecDecodesBackupResponses: what proto.Marshal encodes, in
// pieces of any size, decodes to the same header and data, into the
// codec's one buffer; unknown fields are skipped; a truncated message is
// an error.
func TestBackupCodecDecodesBackupResponses(t *testing.T) {
	c := &backupCodec{}
	chunk := bytes.Repeat([]byte{3, 1, 4, 1, 5}, 1<<18)
	for _, want := range []*sqlraftv1.BackupResponse{
		{},
		{Header: &sqlraftv1.ResponseHeader{RaftIndex: 77, NodeId: "n2"}},
		{Header: &sqlraftv1.ResponseHeader{RaftIndex: 78}, Data: chunk},
		{Data: chunk[:1000]},
	} {
		enc, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		enc = protowire.AppendTag(enc, 9, protowire.VarintType) // a field this CLI does not know
		enc = protowire.AppendVarint(enc, 5)
		for _, piece := range []int{1, 16384, len(enc) + 1} {
			got := &sqlraftv1.BackupResponse{Data: []byte("stale")}
			if err := c.Unmarshal(split(enc, piece), got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got.GetHeader(), want.GetHeader()) || !bytes.Equal(got.GetData(), want.GetData()) {
				t.Fatalf("%d-byte pieces: decoded header %v and %d bytes, want %v and %d", piece, got.GetHeader(),
					len(got.GetData()), want.GetHeader(), len(want.GetData()))
			}
		}
		if len(enc) > 3 {
			if err := c.Unmarshal(split(enc[:len(enc)-3], 100), &sqlraftv1.BackupResponse{}); err == nil && len(want.GetData()) > 0 {
				t.Fatalf("a truncated message of %d bytes decoded", len(enc)-3)
			}
		}
	}
}
