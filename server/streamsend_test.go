package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// TestStalledStreamIsEnded: clients that stop reading a QueryStream (one on
// the leader, one through a follower, which forwards it) but keep it open
// have it ended after the stream send timeout: the leader runs no stream any
// more, so no SQLite read transaction stays open for them, and each client,
// when it reads on, gets the rows already sent and then DEADLINE_EXCEEDED
// naming the flag. A client that reads slowly but steadily, for longer than
// the timeout in all, is served to the end.
func TestStalledStreamIsEnded(t *testing.T) {
	const timeout = 2 * time.Second
	c := servertest.New(t, 3, servertest.Options{Server: func(_ int, o *server.Options) { o.StreamSendTimeout = timeout }})
	leader, follower := c.Leader(), c.Followers()[0]
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endlessRows := &sqlraftv1.QueryStreamRequest{Statement: st(endless + "SELECT x, randomblob(1000) FROM c"),
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE}
	var stalled []sqlraftv1.DatabaseService_QueryStreamClient
	for _, n := range []*servertest.Node{leader, follower} {
		stream, err := n.DB().QueryStream(sctx, endlessRows)
		if err == nil {
			_, err = stream.Recv() // the stream is running; now stop reading it
		}
		if err != nil {
			t.Fatalf("via %s: %v", n.ID, err)
		}
		stalled = append(stalled, stream)
	}
	start := time.Now()
	c.Eventually(30*time.Second, func() error {
		if n := leader.Raft.Status().Streams; n != 0 {
			return errorf("the leader still runs %d streams whose clients stopped reading", n)
		}
		return nil
	})
	t.Logf("the stalled streams ended %v after they were opened", time.Since(start).Round(time.Millisecond))
	for i, stream := range stalled {
		var err error
		for err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.DeadlineExceeded || !strings.HasPrefix(status.Convert(err).Message(), "the client took no message") ||
			!strings.Contains(err.Error(), "--stream-send-timeout") {
			t.Errorf("stalled stream %d ended with %v, want DEADLINE_EXCEEDED naming --stream-send-timeout", i, err)
		}
	}

	slow, err := follower.DB().QueryStream(ctx(t), &sqlraftv1.QueryStreamRequest{BatchSize: 100,
		Statement:   st("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000) SELECT x, randomblob(100) FROM c"),
		Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		t.Fatal(err)
	}
	rows, start := 0, time.Now()
	for {
		msg, err := slow.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the slow reader, after %d rows: %v", rows, err)
		}
		rows += len(msg.GetRows())
		time.Sleep(200 * time.Millisecond)
	}
	if rows != 3000 {
		t.Fatalf("the slow reader got %d rows, want 3000", rows)
	}
	t.Logf("the slow reader got every row in %v", time.Since(start).Round(time.Millisecond))
}
