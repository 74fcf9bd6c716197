package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeLeaseRaft is a leader (or not) with a configuration, for readLease.
type fakeLeaseRaft struct {
	mu     sync.Mutex
	state  raft.RaftState
	term   uint64
	config raft.Configuration
}

func (f *fakeLeaseRaft) State() raft.RaftState { f.mu.Lock(); defer f.mu.Unlock(); return f.state }
func (f *fakeLeaseRaft) CurrentTerm() uint64   { f.mu.Lock(); defer f.mu.Unlock(); return f.term }
func (f *fakeLeaseRaft) GetConfiguration() raft.ConfigurationFuture {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeConfigFuture{f.config.Clone()}
}

type fakeConfigFuture struct{ c raft.Configuration }

func (f fakeConfigFuture) Error() error                      { return nil }
func (f fakeConfigFuture) Index() uint64                     { return 1 }
func (f fakeConfigFuture) Configuration() raft.Configuration { return f.c }

// leaseFixture is a readLease on a fake clock whose voters answer as the
// test says.
type leaseFixture struct {
	l       *readLease
	raft    *fakeLeaseRaft
	clock   atomic.Pointer[time.Time]
	changed chan struct{}
	asked   atomic.Int32

	mu      sync.Mutex
	answers map[raft.ServerID]leaseAnswer // absent: the voter does not answer (error)
}

const (
	testLeaseLength = 500 * time.Millisecond
	testHeartbeat   = 2 * time.Second
)

// newLeaseFixture has voters n0 (this node, the leader) … n(voters-1), and
// nonVoters more.
func newLeaseFixture(voters, nonVoters int) *leaseFixture {
	f := &leaseFixture{raft: &fakeLeaseRaft{state: raft.Leader, term: 3}, changed: make(chan struct{}),
		answers: map[raft.ServerID]leaseAnswer{}}
	for i := 0; i < voters+nonVoters; i++ {
		s := raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i)), Address: raft.ServerAddress(fmt.Sprintf("a%d", i)), Suffrage: raft.Voter}
		if i >= voters {
			s.Suffrage = raft.Nonvoter
		}
		f.raft.config.Servers = append(f.raft.config.Servers, s)
	}
	start := time.Unix(1000, 0)
	f.clock.Store(&start)
	f.l = &readLease{length: testLeaseLength, heartbeat: testHeartbeat, id: "n0", raft: f.raft,
		ask: f.ask, changed: func() <-chan struct{} { return f.changed }, now: func() time.Time { return *f.clock.Load() }}
	return f
}

func (f *leaseFixture) ask(_ context.Context, s raft.Server, q leaseQuestion) (leaseAnswer, error) {
	f.asked.Add(1)
	if q.leaderID != "n0" || q.term != f.raft.CurrentTerm() {
		return leaseAnswer{}, fmt.Errorf("asked as %s in term %d", q.leaderID, q.term)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.answers[s.ID]
	if !ok {
		return leaseAnswer{}, errors.New("unreachable")
	}
	return a, nil
}

func (f *leaseFixture) answer(id string, a leaseAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[raft.ServerID(id)] = a
}

func (f *leaseFixture) advance(d time.Duration) {
	t := f.clock.Load().Add(d)
	f.clock.Store(&t)
}

func (f *leaseFixture) until(t *testing.T) time.Duration {
	t.Helper()
	st := f.l.state.Load()
	if st == nil {
		t.Fatal("no lease")
	}
	return st.until.Sub(*f.clock.Load())
}

func follows(age time.Duration) leaseAnswer { return leaseAnswer{following: true, contactAge: age} }

// One follower of two makes a quorum with the leader: the lease is the
// configured length, or shorter when that follower's contact is so old
// that it could drop its leader sooner.
func TestLeaseLengthFromAnswers(t *testing.T) {
	f := newLeaseFixture(3, 0)
	f.answer("n1", follows(100*time.Millisecond))
	f.l.renew(context.Background())
	if got := f.until(t); got != testLeaseLength {
		t.Fatalf("lease %v, want %v", got, testLeaseLength)
	}
	// Heard from its leader 1.6 s ago: it may drop it after 0.4 s, and the
	// lease keeps a tenth of the heartbeat timeout as a margin.
	f.answer("n1", follows(1600*time.Millisecond))
	f.l.renew(context.Background())
	if got, want := f.until(t), testHeartbeat-testHeartbeat/leaseClockMargin-1600*time.Millisecond; got != want {
		t.Fatalf("lease %v, want %v", got, want)
	}
	if !f.l.valid() {
		t.Fatal("a fresh lease is not valid")
	}
	f.advance(200 * time.Millisecond)
	if f.l.valid() {
		t.Fatal("a lease is valid after it ended")
	}
}

// Without enough followers there is no lease; non-voters are not asked and
// never count.
func TestLeaseNeedsAQuorumOfVoters(t *testing.T) {
	f := newLeaseFixture(5, 2)
	f.answer("n1", follows(0))
	f.answer("n5", follows(0)) // non-voters
	f.answer("n6", follows(0))
	f.answer("n2", leaseAnswer{}) // follows someone else
	f.l.renew(context.Background())
	if f.l.state.Load() != nil || f.l.valid() {
		t.Fatal("a lease from one voter of five")
	}
	if got := f.asked.Load(); got != 4 {
		t.Fatalf("asked %d nodes, want the 4 other voters", got)
	}
	// With two followers the quorum is there; the lease is bounded by the
	// worse of their answers. (The round stops at the first two yes
	// answers, so n1 is made to answer no here.)
	f.answer("n1", leaseAnswer{})
	f.answer("n3", follows(1700*time.Millisecond))
	f.answer("n4", follows(1650*time.Millisecond))
	f.l.renew(context.Background())
	if got, want := f.until(t), testHeartbeat-testHeartbeat/leaseClockMargin-1700*time.Millisecond; got != want {
		t.Fatalf("lease %v, want %v (the worse of the two answers)", got, want)
	}
	// A leader alone in its configuration needs no one.
	solo := newLeaseFixture(1, 0)
	solo.l.renew(context.Background())
	if got := solo.until(t); got != testLeaseLength {
		t.Fatalf("single voter: lease %v, want %v", got, testLeaseLength)
	}
	// A leader that is not a voter counts for nothing and gets no lease.
	f2 := newLeaseFixture(3, 0)
	f2.raft.config.Servers[0].Suffrage = raft.Nonvoter
	f2.answer("n1", follows(0))
	f2.answer("n2", follows(0))
	f2.l.renew(context.Background())
	if f2.l.state.Load() != nil {
		t.Fatal("a lease for a leader that is not a voter")
	}
}

// A change the node reports, a new term, or the loss of leadership ends
// the lease at once; no lease is granted to a follower.
func TestLeaseEndsOnChange(t *testing.T) {
	f := newLeaseFixture(3, 0)
	f.answer("n1", follows(0))
	f.l.renew(context.Background())
	if !f.l.valid() {
		t.Fatal("no lease")
	}
	close(f.changed)
	if f.l.valid() {
		t.Fatal("valid after a change")
	}
	f.changed = make(chan struct{})
	f.l.renew(context.Background())
	if !f.l.valid() {
		t.Fatal("no lease after renewing")
	}
	f.raft.mu.Lock()
	f.raft.term++
	f.raft.mu.Unlock()
	if f.l.valid() {
		t.Fatal("valid in a later term")
	}
	f.raft.mu.Lock()
	f.raft.state = raft.Follower
	f.raft.mu.Unlock()
	f.l.state.Store(nil)
	f.l.renew(context.Background())
	if f.l.state.Load() != nil {
		t.Fatal("a follower renewed a lease")
	}
}

// A leadership transfer ends the lease; no round, even one that began
// before, grants one until the transfer is over.
func TestLeaseSuspendedDuringTransfer(t *testing.T) {
	f := newLeaseFixture(3, 0)
	f.answer("n1", follows(0))
	f.l.renew(context.Background())
	// A round that is asking when the transfer starts.
	release := make(chan struct{})
	inner := f.l.ask
	f.l.ask = func(ctx context.Context, s raft.Server, q leaseQuestion) (leaseAnswer, error) {
		<-release
		return inner(ctx, s, q)
	}
	done := make(chan struct{})
	go func() { f.l.renew(context.Background()); close(done) }()
	f.l.suspend()
	if f.l.valid() {
		t.Fatal("valid during a transfer")
	}
	close(release)
	<-done
	f.l.renew(context.Background())
	f.l.resume()
	if f.l.state.Load() != nil {
		t.Fatal("a round during the transfer granted a lease")
	}
	f.l.renew(context.Background())
	if !f.l.valid() {
		t.Fatal("no lease after the transfer")
	}
}

// A lease more than half spent is renewed in the background by the read
// that finds it so; one renewal runs at a time.
func TestLeaseRenewedBeforeItEnds(t *testing.T) {
	f := newLeaseFixture(3, 0)
	f.answer("n1", follows(0))
	f.l.renew(context.Background())
	first := f.l.state.Load()
	f.advance(testLeaseLength * 3 / 4)
	if !f.l.valid() {
		t.Fatal("not valid three quarters through")
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.l.state.Load() == first || f.l.renewing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("not renewed")
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.until(t); got != testLeaseLength {
		t.Fatalf("renewed lease %v, want %v from now", got, testLeaseLength)
	}
	if f.l.hits.Load() != 1 || f.l.renewals.Load() != 2 {
		t.Fatalf("hits %d renewals %d, want 1 and 2", f.l.hits.Load(), f.l.renewals.Load())
	}
}

// A node reopened on the same directory in this process votes for no one
// until the leases it may have granted before it closed have ended.
func TestGrantsEnd(t *testing.T) {
	dir := t.TempDir()
	before := time.Now()
	noteClosed(dir)
	if end := grantsEnd(dir, 50*time.Millisecond); end.Before(before.Add(50 * time.Millisecond)) {
		t.Fatalf("grants end %v after the close, want 50ms", end.Sub(before))
	}
	if end := grantsEnd(t.TempDir(), time.Millisecond); !end.Equal(processStarts.Add(time.Millisecond)) {
		t.Fatalf("a directory never closed: grants end %v after the process started, want 1ms", end.Sub(processStarts))
	}
}

// The vote gate answers vote and pre-vote requests itself, with no vote,
// until it opens, and hands every other RPC to Raft; afterwards it hands
// on everything.
func TestVoteGate(t *testing.T) {
	_, peer := raft.NewInmemTransport("")
	addr, inner := raft.NewInmemTransport("")
	peer.Connect(addr, inner)
	var clock atomic.Int64 // nanoseconds past start
	start := time.Unix(1000, 0)
	g := newVoteGate(inner, start.Add(time.Second), func() time.Time { return start.Add(time.Duration(clock.Load())) })
	if g == nil {
		t.Fatal("no gate for the in-memory transport")
	}
	defer g.Close()
	// call sends an RPC from peer and reports whether the gate handed it to
	// Raft (which then answers it) or answered it itself.
	call := func(rpc func() error) (handed bool) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- rpc() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return false
		case r := <-g.Consumer():
			switch r.Command.(type) {
			case *raft.RequestVoteRequest:
				r.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
			case *raft.AppendEntriesRequest:
				r.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return true
		case <-time.After(30 * time.Second):
			t.Fatal("neither answered nor handed on")
			return false
		}
	}
	var vote raft.RequestVoteResponse
	if call(func() error { return peer.RequestVote("", addr, &raft.RequestVoteRequest{Term: 7}, &vote) }) {
		t.Fatal("a vote request reached Raft while the gate was closed")
	}
	if vote.Granted || vote.Term != 0 {
		t.Fatalf("answer %+v, want no vote, term 0", vote)
	}
	var pre raft.RequestPreVoteResponse
	if call(func() error { return peer.RequestPreVote("", addr, &raft.RequestPreVoteRequest{Term: 7}, &pre) }) || pre.Granted {
		t.Fatalf("a pre-vote request reached Raft while the gate was closed, or was granted: %+v", pre)
	}
	var app raft.AppendEntriesResponse
	if !call(func() error { return peer.AppendEntries("", addr, &raft.AppendEntriesRequest{Term: 7}, &app) }) || !app.Success {
		t.Fatal("AppendEntries did not reach Raft while the gate was closed")
	}
	clock.Store(int64(time.Second))
	if !call(func() error { return peer.RequestVote("", addr, &raft.RequestVoteRequest{Term: 8}, &vote) }) || !vote.Granted {
		t.Fatal("a vote request did not reach Raft once the gate opened")
	}
}
