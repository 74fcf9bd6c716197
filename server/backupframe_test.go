package server

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// TestBackupFrameIsABackupResponse: a backupFrame encodes to the bytes
// proto.Marshal gives for the same BackupResponse (with and without a
// header, empty, small and chunk-sized data), and its data buffer is
// released exactly once, after the transport would free it.
func TestBackupFrameIsABackupResponse(t *testing.T) {
	header := &sqlraftv1.ResponseHeader{RaftIndex: 1234, NodeId: "n1"}
	chunk := bytes.Repeat([]byte{7, 1, 9}, (1<<20)/3)
	for _, h := range []*sqlraftv1.ResponseHeader{nil, header} {
		for _, data := range [][]byte{nil, []byte("small"), chunk} {
			released := 0
			f := &backupFrame{header: h, data: data, release: func() { released++ }}
			enc, err := f.marshal()
			if err != nil {
				t.Fatal(err)
			}
			want, err := proto.Marshal(&sqlraftv1.BackupResponse{Header: h, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if got := enc.Materialize(); !bytes.Equal(got, want) {
				t.Fatalf("header %v, %d bytes of data: encoded %d bytes, proto.Marshal %d", h != nil, len(data), len(got), len(want))
			}
			enc.Free()
			if released != 1 {
				t.Fatalf("header %v, %d bytes of data: released %d times", h != nil, len(data), released)
			}
		}
	}
}
