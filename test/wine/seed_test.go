//go:build wine

package wine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// write inserts one row through node i, retrying what a client retries
// (UNAVAILABLE: no leader yet, or the outcome of a write whose row is
// identified by its key and so can be retried as INSERT OR IGNORE).
func (c *winCluster) write(i int, key int64) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.nodes[i].db.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{{
			Sql:    "INSERT OR IGNORE INTO t(id, v) VALUES(?, randomblob(200))",
			Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Integer{Integer: key}}}}}})
		cancel()
		if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// TestSeedScenarioUnderWine is the failure that started this project, with
// Windows file semantics: three sqlraftd.exe processes form a cluster (each
// started once), one stops, the others write far past the trailing logs
// with snapshots every few hundred milliseconds, the stopped node returns
// and is sent a snapshot while writes and forced snapshots go on. Every
// node must start on its first try, the returning node converge, no process
// exit, no snapshot fail, no temporary file stay behind, and the leader's
// log keep being truncated while the install stream is open.
func TestSeedScenarioUnderWine(t *testing.T) {
	c := newWinCluster(t, 3, "--snapshot-threshold", "100", "--snapshot-interval", "200ms", "--trailing-logs", "50")
	for i := range c.nodes {
		c.start(i)
	}
	for i := range c.nodes {
		c.waitServing(i, 2*time.Minute)
	}
	l := c.leader()
	if err := createTable(c, l); err != nil {
		t.Fatal(err)
	}
	var key atomic.Int64
	for i := 0; i < 50; i++ {
		if err := c.write(l, key.Add(1)); err != nil {
			t.Fatal(err)
		}
	}
	f := (l + 1) % len(c.nodes)
	fst, err := c.status(f)
	if err != nil {
		t.Fatal(err)
	}
	c.stop(f)
	t.Logf("stopped %s at log index %d", c.nodes[f].id, fst.GetLastLogIndex())
	writer := (l + 2) % len(c.nodes) // a follower: its writes are forwarded
	for {
		lst, err := c.status(l)
		if err != nil {
			t.Fatal(err)
		}
		if lst.GetFirstLogIndex() > fst.GetLastLogIndex()+1 {
			t.Logf("leader's log now starts at %d", lst.GetFirstLogIndex())
			break
		}
		for i := 0; i < 50; i++ {
			if err := c.write(writer, key.Add(1)); err != nil {
				t.Fatal(err)
			}
		}
		c.alive()
	}
	before, err := c.status(l)
	if err != nil {
		t.Fatal(err)
	}
	c.start(f)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loadErr atomic.Value
	wg.Add(1)
	go func() { // keep writing and snapshotting while the node catches up
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.write(writer, key.Add(1)); err != nil {
				loadErr.Store(err)
				return
			}
			if n%20 == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.nodes[l].cluster.Snapshot(ctx, &sqlraftv1.SnapshotRequest{})
				cancel()
				if err != nil && status.Code(err) != codes.FailedPrecondition {
					loadErr.Store(fmt.Errorf("forced snapshot: %w", err))
					return
				}
			}
		}
	}()
	caughtUp := waitCaughtUp(t, c, f, l, 4*time.Minute)
	close(stop)
	wg.Wait()
	if err, _ := loadErr.Load().(error); err != nil {
		t.Fatalf("load during the install: %v", err)
	}
	t.Logf("%s caught up in %v", c.nodes[f].id, caughtUp.Round(time.Millisecond))
	after, err := c.status(l)
	if err != nil {
		t.Fatal(err)
	}
	if after.GetFirstLogIndex() <= before.GetFirstLogIndex() {
		t.Errorf("the leader's log stopped being truncated during the install: first index %d, then %d",
			before.GetFirstLogIndex(), after.GetFirstLogIndex())
	}
	waitConverged(t, c, time.Minute)
	checkClean(t, c, f)
}

// snapshotFailure reports whether a log line is an error about a snapshot,
// except a leader's attempt to send one to a peer it could not connect to
// (gRPC's "Error while dialing"): while the stopped node is down, or not yet
// listening again, Raft tries to send it a snapshot and logs the refused
// connection. Nothing was sent and no snapshot failed on any node; a
// transfer that broke, or an install or persist that failed, has another
// error and still counts.
func snapshotFailure(line string) bool {
	return strings.Contains(line, "level=ERROR") && strings.Contains(strings.ToLower(line), "snapshot") &&
		!strings.Contains(line, "Error while dialing")
}

func createTable(c *winCluster, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.nodes[i].db.Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{
		{Sql: "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)"}}})
	return err
}

// waitCaughtUp waits until the returning node f has applied what the leader
// had applied when the wait began.
func waitCaughtUp(t *testing.T, c *winCluster, f, l int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	lst, err := c.status(l)
	if err != nil {
		t.Fatal(err)
	}
	for {
		c.alive()
		st, err := c.status(f)
		if err == nil && st.GetAppliedIndex() >= lst.GetAppliedIndex() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s did not catch up to %d within %v (last status: applied %d, %v)",
				c.nodes[f].id, lst.GetAppliedIndex(), timeout, st.GetAppliedIndex(), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitConverged waits until every node reports the same checksum at the
// same index, at or past the highest index a node had applied when it was
// called (checksums are cached: an old sum shared by two nodes is not
// convergence).
func waitConverged(t *testing.T, c *winCluster, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var target uint64
	for i := range c.nodes {
		if st, err := c.status(i); err == nil {
			target = max(target, st.GetAppliedIndex())
		}
	}
	for {
		var sums []string
		for _, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cs, err := n.cluster.Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			cancel()
			if err != nil {
				sums = append(sums, err.Error())
				continue
			}
			if cs.GetAppliedIndex() < target {
				sums = append(sums, fmt.Sprintf("error: at %d, want at least %d", cs.GetAppliedIndex(), target))
				continue
			}
			sums = append(sums, fmt.Sprintf("%d:%s", cs.GetAppliedIndex(), cs.GetSha256()))
		}
		if sums[0] == sums[1] && sums[1] == sums[2] && !strings.Contains(sums[0], "error") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checksums differ after %v: %v", timeout, sums)
		}
		time.Sleep(time.Second)
	}
}

// checkClean: every process still runs, started as often as the scenario
// started it, no snapshot failed, and no temporary file stayed behind.
func checkClean(t *testing.T, c *winCluster, returned int) {
	t.Helper()
	c.alive()
	for i, n := range c.nodes {
		want := 1
		if i == returned {
			want = 2
		}
		if n.starts != want {
			t.Errorf("%s was started %d times, want %d", n.id, n.starts, want)
		}
		st, err := c.status(i)
		if err != nil {
			t.Errorf("%s: %v", n.id, err)
			continue
		}
		if e := st.GetSnapshot().GetLastError(); e != "" {
			t.Errorf("%s: last snapshot error %q", n.id, e)
		}
		for _, line := range strings.Split(n.log.String(), "\n") {
			if snapshotFailure(line) {
				t.Errorf("%s logged a snapshot error: %s", n.id, line)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []string
		for i := range c.nodes {
			for _, p := range c.leftovers(i) {
				left = append(left, c.nodes[i].id+": "+p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("temporary files left behind: %v", left)
			return
		}
		time.Sleep(time.Second)
	}
}
