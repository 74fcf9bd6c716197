package hostile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestStalledQueryStream: clients open QueryStream on a table of a million
// rows, take the first message and stop reading, keeping the stream open:
// one on the leader, one through a follower (which forwards it to the
// leader). They are served as long as the server may wait for them; after
// --stream-send-timeout the server ends their streams (they get the rows
// already sent, then DEADLINE_EXCEEDED naming the flag) and the leader holds
// nothing for them any more. A client that stops reading and goes away
// releases its stream at once. Another client then reads every row.
func TestStalledQueryStream(t *testing.T) {
	c := newCluster(t)
	leader, follower := c.Leader(), c.Followers()[0]
	rows := 1_000_000
	if testing.Short() {
		rows = 100_000
	}
	fill(t, leader, rows)
	before := settled()
	h := newHostile(t)
	leavesAtOnce(t, h.db(leader.GRPCAddr), leader)
	wal := filepath.Join(leader.Dir, "db.sqlite-wal")
	walBefore := fileSize(wal)
	var stalled []sqlraftv1.DatabaseService_QueryStreamClient
	var opened time.Time
	measure(t, c, fmt.Sprintf("QueryStream of %d rows; the client stops reading", rows),
		"served while it reads; after --stream-send-timeout without reading, the rows already sent, then DEADLINE_EXCEEDED",
		func(sp *span) string {
			opened = time.Now()
			for _, n := range []*servertest.Node{leader, follower} {
				stream, _ := stalledStream(t, context.Background(), h.db(n.GRPCAddr))
				stalled = append(stalled, stream)
			}
			if s := leader.Raft.Status().Streams; s != 2 {
				t.Errorf("the leader runs %d streams while two clients hold theirs open, want 2", s)
			}
			sp.wait()
			return "held 2 streams open (on the leader, via a follower) after their first message"
		})
	t.Logf("the leader's WAL (reset by snapshots only) went from %d to %d bytes meanwhile", walBefore, fileSize(wal))
	c.Eventually(30*time.Second, func() error {
		if s := leader.Raft.Status().Streams; s != 0 {
			return fmt.Errorf("the leader still runs %d streams whose clients stopped reading", s)
		}
		return nil
	})
	t.Logf("the server ended the stalled streams %v after they were opened (--stream-send-timeout %v)",
		time.Since(opened).Round(time.Millisecond), streamSendTimeout)
	for i, stream := range stalled {
		got, err := drain(stream)
		if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "--stream-send-timeout") {
			t.Errorf("stalled stream %d: got %d rows, then %v; want DEADLINE_EXCEEDED naming --stream-send-timeout", i, got, err)
		}
		t.Logf("stalled stream %d, read on: %d rows, then %v", i, got, err)
	}
	start, db := time.Now(), h.db(follower.GRPCAddr)
	err := servertest.Retry(t, context.Background(), servertest.Idempotent, func(ctx context.Context) error {
		stream, err := db.QueryStream(ctx, &sqlraftv1.QueryStreamRequest{Statement: st("SELECT id, v FROM big"),
			Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
		if err != nil {
			return err
		}
		got, err := drain(stream)
		if err == nil && got != rows {
			return fmt.Errorf("%d rows, want %d", got, rows)
		}
		return err
	})
	if err != nil {
		t.Fatalf("a steady reader: %v", err)
	}
	t.Logf("a steady reader got all %d rows through %s in %v", rows, follower.ID, time.Since(start).Round(time.Millisecond))
	h.leave()
	checkNothingLeft(t, c, before)
	t.Logf("the leader's WAL is %d bytes after the snapshot", fileSize(wal))
}

// leavesAtOnce: a client that stops reading a stream and then goes away
// (cancels the call) releases the stream at once, well before the server
// would end it.
func leavesAtOnce(t *testing.T, db sqlraftv1.DatabaseServiceClient, leader *servertest.Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := time.Now()
	stalledStream(t, ctx, db)
	if s := leader.Raft.Status().Streams; s != 1 {
		t.Fatalf("the leader runs %d streams, want 1", s)
	}
	cancel()
	for leader.Raft.Status().Streams != 0 {
		if time.Since(opened) > streamSendTimeout {
			t.Fatalf("the stream of a client that went away still runs %v after it was opened", time.Since(opened))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the stream of a client that stopped reading and went away ended %v after it was opened",
		time.Since(opened).Round(time.Millisecond))
}

// drain reads stream to its end and returns the rows it got and the error
// that ended it (nil at the end of the rows).
func drain(stream sqlraftv1.DatabaseService_QueryStreamClient) (int, error) {
	rows := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows += len(msg.GetRows())
	}
}

// fill creates big(id, v) with rows rows, in chunks that stay well within
// the default write limits (--max-write-steps, --max-write-rows).
func fill(t *testing.T, n *servertest.Node, rows int) {
	t.Helper()
	const chunk = 200_000
	start := time.Now()
	exec(t, n, st("CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT)"))
	for from := 1; from <= rows; from += chunk {
		to := min(from+chunk-1, rows)
		exec(t, n, st("INSERT INTO big(id, v) WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x+1 FROM c WHERE x < ?) "+
			"SELECT x, printf('row %08d', x) FROM c", integer(int64(from)), integer(int64(to))))
	}
	t.Logf("filled big with %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
}

// stalledStream opens a stream of every row of big at LINEARIZABLE, takes
// the first message and returns the stream unread beyond it.
func stalledStream(t *testing.T, ctx context.Context, db sqlraftv1.DatabaseServiceClient) (sqlraftv1.DatabaseService_QueryStreamClient, int) {
	t.Helper()
	stream, err := db.QueryStream(ctx, &sqlraftv1.QueryStreamRequest{
		Statement: st("SELECT id, v FROM big"), Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return stream, len(msg.GetRows())
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
