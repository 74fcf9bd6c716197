package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func oneAuthNode(t *testing.T, usersFile string, burst int, reflection server.ReflectionMode) *servertest.Node {
	c := servertest.New(t, 1, servertest.Options{Server: func(i int, o *server.Options) {
		users, err := auth.Open(usersFile, auth.Options{Logger: servertest.Logger(), FailureBurst: burst, FailureEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		o.Users, o.Reflection = users, reflection
	}})
	return c.Leader()
}

func statusAs(n *servertest.Node, ctx context.Context) error {
	_, err := n.Cluster().Status(ctx, &sqlraftv1.StatusRequest{})
	return err
}

// TestAuthBadInput: malformed credentials get UNAUTHENTICATED with a clear
// message, a megabyte of authorization is refused by the transport, and
// the node goes on serving.
func TestAuthBadInput(t *testing.T) {
	n := oneAuthNode(t, writeUsersFile(t, ""), 10000, server.ReflectionOn)
	for _, tc := range []struct {
		name string
		md   metadata.MD
		msg  string
	}{
		{"basic not base64", metadata.Pairs("authorization", "Basic %%%not-base64"), "not base64"},
		{"basic without colon", metadata.Pairs("authorization", "Basic "+b64("only-status")), "user:password"},
		{"basic empty", metadata.Pairs("authorization", "Basic "), "user:password"},
		{"empty bearer", metadata.Pairs("authorization", "Bearer "), "empty Bearer"},
		{"bearer without dot", metadata.Pairs("authorization", "Bearer abc"), "invalid credentials"},
		{"unknown scheme", metadata.Pairs("authorization", "Digest abc"), "want \"Basic"},
		{"two headers", metadata.Pairs("authorization", basic("only-status", "pw-only-status"), "authorization", "Bearer "+testToken), "more than one"},
		{"binary junk", metadata.Pairs("authorization", "Basic "+b64("\x00\xff:\x01")), "invalid credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := statusAs(n, metadata.NewOutgoingContext(ctx(t), tc.md))
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want UNAUTHENTICATED mentioning %q", err, tc.msg)
			}
		})
	}
	t.Run("1 MB authorization header", func(t *testing.T) {
		huge := "Basic " + strings.Repeat("A", 1<<20)
		err := statusAs(n, withAuth(ctx(t), huge))
		if err == nil || status.Code(err) == codes.OK {
			t.Fatal("a 1 MB header was accepted")
		}
		t.Logf("refused with %v", status.Code(err))
		// The transport refused it (grpc-go's client honours the server's
		// header list limit); the connection and the node are fine.
		if err := statusAs(n, withAuth(ctx(t), basic("only-status", "pw-only-status"))); err != nil {
			t.Fatalf("after the huge header: %v", err)
		}
	})
	t.Run("1 MB header from a client that ignores the limit", func(t *testing.T) {
		if got := rawHugeHeader(t, n.GRPCAddr, 1<<20); got == "" {
			t.Fatal("the server answered a 1 MB header list normally")
		} else {
			t.Logf("refused: %s", got)
		}
		if err := statusAs(n, withAuth(ctx(t), basic("only-status", "pw-only-status"))); err != nil {
			t.Fatalf("after the huge header: %v", err)
		}
	})
	t.Run("health is open", func(t *testing.T) {
		if _, err := healthpb.NewHealthClient(n.Conn()).Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// listServices asks server reflection for the service list.
func listServices(ctx context.Context, conn *grpc.ClientConn) error {
	s, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return err // io.EOF: the server ended the stream already; Recv has its status
	}
	_, err = s.Recv()
	return err
}

// TestAuthThrottle: many failures from one address are throttled
// (RESOURCE_EXHAUSTED with a retry delay, before any hashing), while the
// node serves other addresses, and a client from the same address whose
// credentials were verified before keeps working.
func TestAuthThrottle(t *testing.T) {
	n := oneAuthNode(t, writeUsersFile(t, ""), 5, server.ReflectionOn)
	good := withAuth(ctx(t), basic("only-status", "pw-only-status"))
	if err := statusAs(n, good); err != nil {
		t.Fatal(err)
	}
	bad := withAuth(ctx(t), basic("only-status", "guess"))
	for i := 0; i < 5; i++ {
		if err := statusAs(n, bad); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	for i := 0; i < 20; i++ {
		err := statusAs(n, bad)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "retry in") {
			t.Fatalf("guess %d after the burst: %v, want RESOURCE_EXHAUSTED", i, err)
		}
		if i == 0 && !hasRetryInfo(err) {
			t.Fatalf("no RetryInfo in %v", err)
		}
	}
	// A verified client on the same address goes on.
	if err := statusAs(n, good); err != nil {
		t.Fatalf("cached credentials from the throttled address: %v", err)
	}
	// A client from another address is served, failures included.
	other := dialFrom(t, "127.0.0.2", n.GRPCAddr)
	if _, err := other.Status(withAuth(ctx(t), basic("only-status", "guess")), &sqlraftv1.StatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("another address, wrong password: %v", err)
	}
	if _, err := other.Status(withAuth(ctx(t), basic("all-but-execute", "pw-all-but-execute")), &sqlraftv1.StatusRequest{}); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return true
		}
	}
	return false
}

// dialFrom connects to addr from the local address ip (any 127/8 address
// is loopback on Linux).
func dialFrom(t *testing.T, ip, addr string) sqlraftv1.ClusterServiceClient {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sqlraftv1.NewClusterServiceClient(conn)
}

// TestReflectionModes: reflection open, for authenticated callers only, or
// not served; health stays open throughout.
func TestReflectionModes(t *testing.T) {
	file := writeUsersFile(t, "")
	for _, tc := range []struct {
		mode       server.ReflectionMode
		anon, user codes.Code
	}{
		{server.ReflectionOn, codes.OK, codes.OK},
		{server.ReflectionAuthenticated, codes.Unauthenticated, codes.OK},
		{server.ReflectionOff, codes.Unimplemented, codes.Unimplemented},
	} {
		n := oneAuthNode(t, file, 10000, tc.mode)
		for _, who := range []struct {
			ctx  context.Context
			want codes.Code
		}{{ctx(t), tc.anon}, {withAuth(ctx(t), basic("only-query", "pw-only-query")), tc.user}} {
			if got := status.Code(listServices(who.ctx, n.Conn())); got != who.want {
				t.Errorf("mode %d: got %v, want %v", tc.mode, got, who.want)
			}
		}
	}
}

// rawHugeHeader sends, over plain HTTP/2 and ignoring the server's
// advertised header list limit, a gRPC call with an authorization header of
// size bytes, and describes how the server refused it ("" if it did not).
func rawHugeHeader(t *testing.T, addr string, size int) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", sqlraftv1.ClusterService_Status_FullMethodName},
		{":authority", addr}, {"content-type", "application/grpc"}, {"te", "trailers"},
		{"authorization", "Basic " + strings.Repeat("A", size)}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hb.Bytes()
	const chunk = 16 << 10
	first := min(chunk, len(block))
	// The server may reset the connection part way: a write error is a refusal too.
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:first], EndHeaders: first == len(block)}); err != nil {
		return "write failed: " + err.Error()
	}
	for off := first; off < len(block); off += chunk {
		end := min(off+chunk, len(block))
		if err := fr.WriteContinuation(1, end == len(block), block[off:end]); err != nil {
			return "write failed: " + err.Error()
		}
	}
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}) // an empty StatusRequest
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "connection closed: " + err.Error()
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			return "RST_STREAM " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String()
		case *http2.MetaHeadersFrame:
			if st := f.PseudoValue("status"); st != "" && st != "200" {
				return "HTTP " + st
			}
			for _, h := range f.Fields {
				if h.Name == "grpc-status" && h.Value != "0" {
					return "grpc-status " + h.Value + " " + f.Fields[len(f.Fields)-1].Value
				}
			}
			if f.StreamEnded() {
				return ""
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				return ""
			}
		}
	}
}
