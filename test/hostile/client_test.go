package hostile

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// hostileClient is the hostile side of a case: its connections, its own,
// which it closes when it leaves (at the end of the test at the latest).
type hostileClient struct {
	t     *testing.T
	mu    sync.Mutex
	conns []*grpc.ClientConn
}

func newHostile(t *testing.T) *hostileClient {
	h := &hostileClient{t: t}
	t.Cleanup(h.leave)
	return h
}

// conn opens a connection to addr. (grpc.NewClient only fails on a bad
// target or option, so it is safe to call from any goroutine.)
func (h *hostileClient) conn(addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, conn)
	return conn
}

// db is a DatabaseService client on a new connection to addr.
func (h *hostileClient) db(addr string) sqlraftv1.DatabaseServiceClient {
	return sqlraftv1.NewDatabaseServiceClient(h.conn(addr))
}

// leave closes every connection of the client.
func (h *hostileClient) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// encoded is a request encoded once, which rawCodec sends as it is: a
// client flooding the server with one large request need not encode it
// again each time, and in this one-process harness encoding 100 MiB per
// request would compete with the nodes for the CPUs, which a client on
// another machine does not.
type encoded []byte

// encode encodes req once.
func encode(t *testing.T, req protov2.Message) encoded {
	t.Helper()
	b, err := protov2.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawCodec is protobuf, except that it sends an encoded request as it is.
type rawCodec struct{}

func (rawCodec) Name() string { return proto.Name }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return encoding.GetCodecV2(proto.Name).Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2(proto.Name).Unmarshal(data, v)
}

// send sends an encoded request to method (a DatabaseService unary method)
// on conn and decodes the answer into resp.
func send(ctx context.Context, conn *grpc.ClientConn, method string, req encoded, resp protov2.Message) error {
	return conn.Invoke(ctx, method, req, resp, grpc.ForceCodecV2(rawCodec{}))
}
