package server_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	protov2 "google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// rawCodec sends a []byte request as it is and receives a response as bytes,
// so a test can put anything on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("rawCodec sends []byte")
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return proto.Name }

var (
	// truncated ends inside a varint field tag.
	truncated = []byte{0xff, 0xff, 0xff}
	// badUTF8 is a QueryRequest whose one statement's sql is the byte ff.
	badUTF8 = []byte{0x0a, 0x03, 0x0a, 0x01, 0xff}
)

func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	const limit = msglimit.Minimum
	c := servertest.New(t, 1, servertest.Options{Configure: func(_ int, cfg *raftnode.Config) { cfg.MaxMessageBytes = limit }})
	conn := c.Leader().Conn()
	raw := grpc.ForceCodecV2(rawCodec{})
	unary := func(method string, req []byte) error {
		var out []byte
		return conn.Invoke(ctx(t), method, req, &out, raw)
	}
	wantInvalid := func(what string, err error, msg string) {
		t.Helper()
		if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), msg) {
			t.Errorf("%s: got %v, want InvalidArgument mentioning %q", what, err, msg)
		}
	}
	wantInvalid("unary, truncated", unary("/sqlraft.v1.DatabaseService/Query", truncated), "not a valid sqlraft.v1.QueryRequest message")
	wantInvalid("unary, invalid UTF-8", unary("/sqlraft.v1.DatabaseService/Query", badUTF8), "invalid UTF-8")
	wantInvalid("cluster service", unary("/sqlraft.v1.ClusterService/Checksum", truncated), "not a valid sqlraft.v1.ChecksumRequest message")
	wantInvalid("server stream, truncated", streamRequest(t, conn, truncated), "not a valid sqlraft.v1.QueryStreamRequest message")

	// Too large is still RESOURCE_EXHAUSTED.
	big := make([]byte, 2*limit) // zeros: not even valid protobuf
	wantCode(t, unary("/sqlraft.v1.DatabaseService/Query", big), codes.ResourceExhausted)
	wantCode(t, streamRequest(t, conn, big), codes.ResourceExhausted)

	// Valid requests still work, sent raw or with the generated clients, and
	// so do the other services.
	valid, err := protov2.Marshal(&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := unary("/sqlraft.v1.DatabaseService/Query", valid); err != nil {
		t.Errorf("valid raw request: %v", err)
	}
	if n := count(t, c.Leader(), "(SELECT 1)", sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE); n != 1 {
		t.Errorf("count = %d", n)
	}
	if _, err := c.Leader().Cluster().Checksum(ctx(t), &sqlraftv1.ChecksumRequest{}); err != nil {
		t.Errorf("Checksum: %v", err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health: %v", err)
	}
	stream, err := c.Leader().DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{Statement: st("SELECT 7")})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.GetRows()[0].GetValues()[0].GetInteger() != 7 {
		t.Errorf("QueryStream: %v %v", msg, err)
	}
}

// streamRequest sends req as a QueryStream request and returns the error
// the stream ends with.
func streamRequest(t *testing.T, conn *grpc.ClientConn, req []byte) error {
	t.Helper()
	s, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true}, "/sqlraft.v1.DatabaseService/QueryStream",
		grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		var out []byte
		if err := s.RecvMsg(&out); err != nil {
			return err
		}
	}
}
