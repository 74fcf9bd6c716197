package raftnode

import (
	"context"
	"errors"
	"fmt"

	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sqlraft/sqlraft/internal/eventually"
)

// fakeQuorum answers each VerifyLeader when the test releases it.
type fakeQuorum struct {
	commit  atomic.Uint64
	started chan *fakeRound
}

type fakeRound struct {
	commit uint64 // the commit index when the round started
	done   chan error
}

func (f *fakeRound) Error() error { return <-f.done }

func (q *fakeQuorum) CommitIndex() uint64 { return q.commit.Load() }

func (q *fakeQuorum) VerifyLeader() raft.Future {
	r := &fakeRound{commit: q.commit.Load(), done: make(chan error, 1)}
	q.started <- r
	return r
}

func newFakeQuorum() *fakeQuorum { return &fakeQuorum{started: make(chan *fakeRound, 100)} }

func nextRound(t *testing.T, q *fakeQuorum) *fakeRound {
	t.Helper()
	select {
	case r := <-q.started:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no round started")
		return nil
	}
}

// confirmAsync runs confirm in the background; the result arrives on the
// returned channel.
func confirmAsync(ri *readIndex) chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		i, err := ri.confirm(context.Background())
		ch <- readResult{index: i, err: err}
	}()
	return ch
}

// A read that arrives while a round is in flight starts the next round at
// once, and gets the commit index noted after it arrived.
func TestReadRoundsOverlap(t *testing.T) {
	q := newFakeQuorum()
	ri := &readIndex{raft: q, maxRounds: 2}
	q.commit.Store(5)
	first := confirmAsync(ri)
	r1 := nextRound(t, q)
	q.commit.Store(9)
	second := confirmAsync(ri)
	r2 := nextRound(t, q) // started while r1 is still in flight
	if r1.commit != 5 || r2.commit != 9 {
		t.Fatalf("rounds noted commit %d and %d, want 5 and 9", r1.commit, r2.commit)
	}
	r2.done <- nil
	if res := <-second; res.err != nil || res.index != 9 {
		t.Fatalf("second read: %+v", res)
	}
	r1.done <- nil
	if res := <-first; res.err != nil || res.index != 5 {
		t.Fatalf("first read: %+v", res)
	}
}

// With maxRounds in flight, reads wait and then share one round; a failed
// round fails exactly its own reads.
func TestReadRoundsShareAndBound(t *testing.T) {
	q := newFakeQuorum()
	ri := &readIndex{raft: q, maxRounds: 1}
	first := confirmAsync(ri)
	r1 := nextRound(t, q)
	var waiting []chan readResult
	for range 10 {
		waiting = append(waiting, confirmAsync(ri))
	}
	eventuallyWaiting(t, ri, 10)
	select {
	case <-q.started:
		t.Fatal("a second round started beyond maxRounds")
	default:
	}
	r1.done <- raft.ErrLeadershipLost
	if res := <-first; !errors.Is(res.err, raft.ErrLeadershipLost) {
		t.Fatalf("first read: %+v", res)
	}
	r2 := nextRound(t, q)
	r2.done <- nil
	for _, ch := range waiting {
		if res := <-ch; res.err != nil {
			t.Fatalf("shared round: %+v", res)
		}
	}
	if got := ri.confirmations.Load(); got != 2 {
		t.Errorf("%d rounds for 11 reads, want 2", got)
	}
}

// Closing fails the reads that wait for a round, and later ones.
func TestReadRoundsClose(t *testing.T) {
	q := newFakeQuorum()
	ri := &readIndex{raft: q, maxRounds: 1}
	first := confirmAsync(ri)
	r1 := nextRound(t, q)
	second := confirmAsync(ri)
	eventuallyWaiting(t, ri, 1)
	ri.close()
	if res := <-second; !errors.Is(res.err, ErrShutdown) {
		t.Fatalf("waiting read: %+v", res)
	}
	r1.done <- raft.ErrRaftShutdown
	if res := <-first; !errors.Is(res.err, raft.ErrRaftShutdown) {
		t.Fatalf("read in flight: %+v", res)
	}
	if _, err := ri.confirm(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Fatalf("read after close: %v", err)
	}
}

func eventuallyWaiting(t *testing.T, ri *readIndex, n int) {
	t.Helper()
	eventually.Within(t, 30*time.Second, func() error {
		ri.mu.Lock()
		defer ri.mu.Unlock()
		if len(ri.waiting) != n {
			return fmt.Errorf("%d reads waiting, want %d", len(ri.waiting), n)
		}
		return nil
	})
}
