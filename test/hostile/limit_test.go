package hostile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestJustOverTheMessageLimit: a client sends, again and again through the
// leader and through a follower, a write one byte over the message limit:
// each is refused (RESOURCE_EXHAUSTED naming the size and the limit) before
// it reaches a handler. Then it sends writes one byte under the limit, which
// are served and replicated (and cost what a 1 MiB write costs).
func TestJustOverTheMessageLimit(t *testing.T) {
	c := newCluster(t)
	leader, follower := c.Leader(), c.Followers()[0]
	exec(t, leader, st("CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB)"))
	over, under := encode(t, sized(t, messageLimit+1)), sized(t, messageLimit-1)
	before := settled()
	h := newHostile(t)
	conns := []*grpc.ClientConn{h.conn(leader.GRPCAddr), h.conn(follower.GRPCAddr)}
	measure(t, c, "a write 1 byte over the 1 MiB limit", "RESOURCE_EXHAUSTED: \"grpc: received message larger than max (1048577 vs. 1048576)\"",
		func(sp *span) string {
			return flood(sp, func(i int) {
				err := send(context.Background(), conns[i%2], sqlraftv1.DatabaseService_Execute_FullMethodName, over, &sqlraftv1.ExecuteResponse{})
				if err := wantRefusal(err, messageLimit); err != nil {
					t.Fatalf("a write 1 byte over the limit: %v", err)
				}
			}, len(over), "refused")
		})
	served := 0
	measure(t, c, "a write 1 byte under the 1 MiB limit", "served (replicated: a 1 MiB entry each)", func(sp *span) string {
		return flood(sp, func(i int) {
			err := servertest.Retry(t, context.Background(), servertest.NotIdempotent, func(ctx context.Context) error {
				_, err := sqlraftv1.NewDatabaseServiceClient(conns[i%2]).Execute(ctx, under)
				return err
			})
			if err != nil {
				t.Fatalf("a write 1 byte under the limit: %v", err)
			}
			served++
		}, proto.Size(under), "served")
	})
	if got := count(t, leader, "big"); got != int64(served) {
		t.Fatalf("big has %d rows, want %d", got, served)
	}
	h.leave()
	checkNothingLeft(t, c, before)
}

// TestHundredMegabyteBlob: a client sends, again and again through the
// leader and through a follower, a write and a read with a 100 MiB blob
// parameter. Each is refused with RESOURCE_EXHAUSTED naming the size and
// the limit, before anything is proposed.
func TestHundredMegabyteBlob(t *testing.T) {
	const size = 100 << 20
	c := newCluster(t)
	leader, follower := c.Leader(), c.Followers()[0]
	exec(t, leader, st("CREATE TABLE blobs(v BLOB)"))
	b := blob(make([]byte, size))
	write := encode(t, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO blobs(v) VALUES(?)", b)}})
	read := encode(t, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT length(?)", b)}})
	before := settled()
	h := newHostile(t)
	conns := []*grpc.ClientConn{h.conn(leader.GRPCAddr), h.conn(follower.GRPCAddr)}
	measure(t, c, "a 100 MiB blob parameter (Execute, Query)",
		"RESOURCE_EXHAUSTED \"grpc: received message larger than max (104857637 vs. 1048576)\"", func(sp *span) string {
			return flood(sp, func(i int) {
				var err error
				if i%4 < 2 {
					err = send(context.Background(), conns[i%2], sqlraftv1.DatabaseService_Execute_FullMethodName, write, &sqlraftv1.ExecuteResponse{})
				} else {
					err = send(context.Background(), conns[i%2], sqlraftv1.DatabaseService_Query_FullMethodName, read, &sqlraftv1.QueryResponse{})
				}
				if err := wantRefusal(err, messageLimit); err != nil {
					t.Fatalf("a request with a 100 MiB blob: %v", err)
				}
			}, len(write), "refused")
		})
	if got := count(t, leader, "blobs"); got != 0 {
		t.Fatalf("blobs has %d rows", got)
	}
	h.leave()
	checkNothingLeft(t, c, before)
}

// TestCheapFlood is the control for the floods above: the same kind of
// client, on its own connection, sending tiny valid reads (SELECT 1 at
// NONE) back to back. It is not hostile; it shows what any client in a
// closed loop costs the victim on this machine, where the client, the
// victim and the three nodes share the CPUs.
func TestCheapFlood(t *testing.T) {
	c := newCluster(t)
	leader := c.Leader()
	h := newHostile(t)
	db := h.db(leader.GRPCAddr)
	req := &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")},
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE}
	measure(t, c, "control: SELECT 1 at NONE, back to back (not hostile)", "served", func(sp *span) string {
		return flood(sp, func(int) {
			if _, err := db.Query(context.Background(), req); err != nil {
				t.Fatalf("SELECT 1: %v", err)
			}
		}, proto.Size(req), "served")
	})
}

// flood calls req(0), req(1), … back to back until the hostile window is
// over and describes what it sent: requests of size bytes, each answered as
// outcome says.
func flood(sp *span, req func(i int), size int, outcome string) string {
	start := time.Now()
	var took []time.Duration
	for i := 0; !sp.over(); i++ {
		t0 := time.Now()
		req(i)
		took = append(took, time.Since(t0))
	}
	d := time.Since(start)
	return fmt.Sprintf("sent %d requests of %d bytes in %v, %s (%.0f/s; %v–%v each)", len(took), size, d.Round(time.Millisecond),
		outcome, float64(len(took))/d.Seconds(), ms(percentile(took, 0)), ms(percentile(took, 100)))
}

// sized builds a write of one blob into big whose encoded request is
// exactly size bytes.
func sized(t *testing.T, size int) *sqlraftv1.ExecuteRequest {
	t.Helper()
	req := func(n int) *sqlraftv1.ExecuteRequest {
		return &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO big(v) VALUES(?)", blob(make([]byte, n)))}}
	}
	n := size - proto.Size(req(0))
	for proto.Size(req(n)) > size {
		n--
	}
	for proto.Size(req(n+1)) <= size {
		n++
	}
	if r := req(n); proto.Size(r) == size {
		return r
	}
	t.Fatalf("no request of exactly %d bytes", size)
	return nil
}
