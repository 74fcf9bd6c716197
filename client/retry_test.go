package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// fakeDB is a DatabaseService that fails each call with the next scripted
// error, then succeeds; it counts the calls it receives.
type fakeDB struct {
	sqlraftv1.UnimplementedDatabaseServiceServer
	mu        sync.Mutex
	script    []error
	calls     int
	noForward []string // the sqlraft-no-forward metadata of each call
}

func (f *fakeDB) next(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	f.noForward = append(f.noForward, md.Get(client.MetadataNoForward)...)
	if len(f.script) == 0 {
		return nil
	}
	err := f.script[0]
	f.script = f.script[1:]
	return err
}

func (f *fakeDB) Execute(ctx context.Context, _ *sqlraftv1.ExecuteRequest) (*sqlraftv1.ExecuteResponse, error) {
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return &sqlraftv1.ExecuteResponse{Results: []*sqlraftv1.ExecuteResult{{RowsAffected: 1}}}, nil
}

func (f *fakeDB) Query(ctx context.Context, _ *sqlraftv1.QueryRequest) (*sqlraftv1.QueryResponse, error) {
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return &sqlraftv1.QueryResponse{Results: []*sqlraftv1.QueryResult{{}}}, nil
}

func (f *fakeDB) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// startFake serves f on a loopback port and returns its address.
func startFake(t *testing.T, f *fakeDB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	sqlraftv1.RegisterDatabaseServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func infoErr(code codes.Code, reason string, md map[string]string) error {
	st, err := status.New(code, reason).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: client.ErrorDomain, Metadata: md})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

var (
	outcomeUnknown = infoErr(codes.Unavailable, client.ReasonOutcomeUnknown, nil)
	noLeader       = infoErr(codes.Unavailable, client.ReasonNoLeader, nil)
)

func newFakeClient(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New([]string{addr}, append([]client.Option{client.WithBackoff(time.Millisecond, 10*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func execOnce(c *client.Client, opts ...client.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{Sql: "INSERT INTO t VALUES(1)"}}}, opts...)
	return err
}

func TestWriteOfUnknownOutcomeIsNotRepeated(t *testing.T) {
	f := &fakeDB{script: []error{outcomeUnknown}}
	c := newFakeClient(t, startFake(t, f))
	err := execOnce(c)
	if client.Reason(err) != client.ReasonOutcomeUnknown || status.Code(err) != codes.Unavailable {
		t.Fatalf("Execute: %v, want UNAVAILABLE with reason OUTCOME_UNKNOWN", err)
	}
	if n := f.count(); n != 1 {
		t.Fatalf("the server saw %d attempts, want 1", n)
	}
}

func TestWriteWithoutReasonIsNotRepeated(t *testing.T) {
	f := &fakeDB{script: []error{status.Error(codes.Unavailable, "transport is closing")}}
	c := newFakeClient(t, startFake(t, f))
	if err := execOnce(c); status.Code(err) != codes.Unavailable {
		t.Fatalf("Execute: %v, want UNAVAILABLE", err)
	}
	if n := f.count(); n != 1 {
		t.Fatalf("the server saw %d attempts, want 1", n)
	}
}

func TestIdempotentWriteIsRepeated(t *testing.T) {
	f := &fakeDB{script: []error{outcomeUnknown}}
	c := newFakeClient(t, startFake(t, f))
	if err := execOnce(c, client.Idempotent()); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 2 {
		t.Fatalf("the server saw %d attempts, want 2", n)
	}
}

func TestRetryUnknownOutcomeOption(t *testing.T) {
	f := &fakeDB{script: []error{outcomeUnknown, status.Error(codes.Unavailable, "transport is closing")}}
	c := newFakeClient(t, startFake(t, f), client.WithRetryUnknownOutcome())
	if err := execOnce(c); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 3 {
		t.Fatalf("the server saw %d attempts, want 3", n)
	}
}

func TestNoLeaderIsRetriedUntilItSucceeds(t *testing.T) {
	f := &fakeDB{script: []error{noLeader, noLeader, noLeader}}
	c := newFakeClient(t, startFake(t, f))
	if err := execOnce(c); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 4 {
		t.Fatalf("the server saw %d attempts, want 4", n)
	}
}

func TestRetriesEndWithTheContext(t *testing.T) {
	script := make([]error, 1000)
	for i := range script {
		script[i] = noLeader
	}
	f := &fakeDB{script: script}
	c := newFakeClient(t, startFake(t, f))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, &sqlraftv1.ExecuteRequest{})
	if client.Reason(err) != client.ReasonNoLeader {
		t.Fatalf("Execute: %v, want the last NO_LEADER", err)
	}
	if n := f.count(); n < 2 {
		t.Fatalf("the server saw %d attempts, want retries", n)
	}
}

func TestReadsAreRepeatedAfterUnknownOutcome(t *testing.T) {
	f := &fakeDB{script: []error{outcomeUnknown, status.Error(codes.Unavailable, "transport is closing")}}
	c := newFakeClient(t, startFake(t, f))
	if _, err := c.Query(context.Background(), &sqlraftv1.QueryRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 3 {
		t.Fatalf("the server saw %d attempts, want 3", n)
	}
}

func TestOtherErrorsAreTheAnswer(t *testing.T) {
	f := &fakeDB{script: []error{status.Error(codes.InvalidArgument, "syntax error")}}
	c := newFakeClient(t, startFake(t, f))
	if _, err := c.Query(context.Background(), &sqlraftv1.QueryRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Query: %v, want INVALID_ARGUMENT", err)
	}
	if n := f.count(); n != 1 {
		t.Fatalf("the server saw %d attempts, want 1", n)
	}
}

func TestUnreachableNodeIsSkippedForAWrite(t *testing.T) {
	// A port nothing listens on: the write never leaves the client, so it
	// is safe to send it to the next node.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	f := &fakeDB{}
	live := startFake(t, f)
	c, err := client.New([]string{dead, live}, client.WithBackoff(time.Millisecond, 10*time.Millisecond), client.WithNoForward())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := execOnce(c); err != nil {
		t.Fatal(err)
	}
	if n := f.count(); n != 1 {
		t.Fatalf("the live node saw %d attempts, want 1", n)
	}
	if got := f.noForward; len(got) != 1 || got[0] != "true" {
		t.Fatalf("sqlraft-no-forward metadata %q, want [true]", got)
	}
}
