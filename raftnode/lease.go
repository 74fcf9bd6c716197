package raftnode

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// readLease lets the leader serve linearizable reads without a quorum round
// per read (raftnode/DESIGN.md, "Read leases").
//
// A hashicorp/raft follower refuses to vote for any candidate while it has
// a leader (unless the leader itself asked for a leadership transfer), and
// it drops its leader only once a heartbeat timeout has passed since it
// last heard from it. So when a voter, asked at t0, answers that it follows
// this leader in this term and last heard from it age ago, no other leader
// can be elected with its vote before t0 − age + HeartbeatTimeout. The
// leader itself votes for no one while it leads. With such answers from
// enough voters to make a quorum with the leader, no other leader can exist
// before the earliest of their bounds; until then (less a margin for clock
// rates, and never longer than the configured lease) the leader's commit
// index is the cluster's, and a read of it is linearizable.
//
// The lease ends early on any change the node reports (role, leader,
// configuration: Node.Changed), when the term moves, and while a
// leadership transfer is under way (a transfer is the one case where
// followers vote despite having a leader). A restarted node forgets whom it
// followed, so a node votes for no one until a lease that counted on it
// before the restart has run out (grantsEnd, voteGate).
type readLease struct {
	length    time.Duration // the longest lease
	heartbeat time.Duration // the followers' heartbeat timeout
	id        string        // this node's server ID
	raft      leaseRaft
	ask       func(ctx context.Context, s raft.Server, req leaseQuestion) (leaseAnswer, error)
	retain    func(voters []raft.Server) // optional: the voters asked now (connections to others may go)
	changed   func() <-chan struct{}
	now       func() time.Time

	state    atomic.Pointer[leaseState]
	renewing atomic.Bool

	mu        sync.Mutex   // orders storing a lease against suspend and resume
	suspended atomic.Int32 // leadership transfers under way
	epoch     uint64       // moves at each suspend and resume: a round across one stores nothing

	hits, renewals atomic.Uint64 // for Status
}

// leaseRaft is what readLease needs of Raft (*raft.Raft has it).
type leaseRaft interface {
	State() raft.RaftState
	CurrentTerm() uint64
	GetConfiguration() raft.ConfigurationFuture
}

// leaseState is one granted lease: valid until until, in term, while
// changed is open.
type leaseState struct {
	until   time.Time
	term    uint64
	changed <-chan struct{}
}

// leaseQuestion and leaseAnswer are GrantRequest and GrantResponse.
type leaseQuestion struct {
	leaderID string
	term     uint64
}

type leaseAnswer struct {
	following  bool
	contactAge time.Duration
}

// leaseClockMargin is the share of the heartbeat timeout a lease does not
// count on, for the difference between the leader's and a voter's clock
// rates (far below 1% for any working clock).
const leaseClockMargin = 10

// valid reports whether a read that noted the commit index just before the
// call may be served from it. When the lease is valid but half spent it
// starts a renewal, so that a steady stream of reads never waits for one.
func (l *readLease) valid() bool {
	st := l.state.Load()
	if st == nil || l.suspended.Load() > 0 {
		return false
	}
	select {
	case <-st.changed:
		return false
	default:
	}
	left := st.until.Sub(l.now())
	if left <= 0 || l.raft.CurrentTerm() != st.term {
		return false
	}
	if left < l.length/2 {
		l.renewAsync()
	}
	l.hits.Add(1)
	return true
}

// renewAsync starts a renewal unless one is under way.
func (l *readLease) renewAsync() {
	if !l.renewing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.renewing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), l.heartbeat/4)
		defer cancel()
		l.renew(ctx)
	}()
}

// renew asks every other voter whether it follows this leader and, if
// enough do, records the lease their answers allow.
func (l *readLease) renew(ctx context.Context) {
	changed := l.changed() // before anything is looked at: a change after this ends the new lease
	l.mu.Lock()
	epoch := l.epoch
	l.mu.Unlock()
	if l.suspended.Load() > 0 || l.raft.State() != raft.Leader {
		return
	}
	term := l.raft.CurrentTerm()
	f := l.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var others []raft.Server
	voters, self := 0, false
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if string(s.ID) == l.id {
			self = true
		} else {
			others = append(others, s)
		}
	}
	if !self {
		return // a leader that is not a voter (it removed itself) counts for no quorum
	}
	if l.retain != nil {
		l.retain(others)
	}
	l.renewals.Add(1)
	t0 := l.now()
	need := voters/2 + 1 - 1 // a quorum, less this node
	ends := l.askAll(ctx, others, leaseQuestion{leaderID: l.id, term: term}, t0, need)
	until := t0.Add(l.length)
	if need > 0 {
		if len(ends) < need {
			return
		}
		slices.SortFunc(ends, func(a, b time.Time) int { return b.Compare(a) })
		if ends[need-1].Before(until) {
			until = ends[need-1]
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch || l.suspended.Load() > 0 || l.raft.State() != raft.Leader || l.raft.CurrentTerm() != term {
		return
	}
	l.state.Store(&leaseState{until: until, term: term, changed: changed})
}

// askAll asks others at once and returns, for each that follows this
// leader, until when it will refuse other candidates (see readLease). It
// returns once need of them have answered so, or all have answered.
func (l *readLease) askAll(ctx context.Context, others []raft.Server, q leaseQuestion, t0 time.Time, need int) []time.Time {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan time.Time, len(others)) // the zero time: no
	ask := l.ask
	for _, s := range others {
		go func() {
			a, err := ask(ctx, s, q)
			if err != nil || !a.following || a.contactAge < 0 {
				answers <- time.Time{}
				return
			}
			answers <- t0.Add(l.heartbeat - l.heartbeat/leaseClockMargin - a.contactAge)
		}()
	}
	var ends []time.Time
	for range others {
		if end := <-answers; !end.IsZero() {
			ends = append(ends, end)
		}
		if len(ends) >= need {
			break
		}
	}
	return ends
}

// suspend ends the lease and keeps new ones from being granted until
// resume: a leadership transfer lets followers vote despite their leader.
func (l *readLease) suspend() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.suspended.Add(1)
	l.epoch++
	l.state.Store(nil)
}

// resume ends one suspend. Rounds that overlapped the suspension store
// nothing: the next lease comes from a round started after it.
func (l *readLease) resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.suspended.Add(-1)
	l.epoch++
}

// answerLease is a voter's answer to a leader's GrantRequest.
func answerLease(r *raft.Raft, q leaseQuestion) leaseAnswer {
	if r == nil || r.State() != raft.Follower {
		return leaseAnswer{}
	}
	// Contact first: a later contact only makes the answer more cautious.
	last := r.LastContact()
	_, leader := r.LeaderWithID()
	if last.IsZero() || string(leader) != q.leaderID || r.CurrentTerm() != q.term {
		return leaseAnswer{}
	}
	return leaseAnswer{following: true, contactAge: time.Since(last)}
}

// grantsClosed records, per data directory, when a node of this process
// last closed, for grantsEnd.
var (
	grantsMu      sync.Mutex
	grantsClosed  = map[string]time.Time{}
	processStarts = time.Now()
)

// grantsEnd returns when no lease this node may have granted before it
// (re)started can still run: length after this process started, or after a
// node on the same directory last closed in this process. Until then the
// node must not vote (voteGate).
func grantsEnd(dataDir string, length time.Duration) time.Time {
	grantsMu.Lock()
	defer grantsMu.Unlock()
	from := processStarts
	if t, ok := grantsClosed[dataDir]; ok && t.After(from) {
		from = t
	}
	return from.Add(length)
}

// noteClosed records that the node on dataDir stopped answering.
func noteClosed(dataDir string) {
	grantsMu.Lock()
	grantsClosed[dataDir] = time.Now()
	grantsMu.Unlock()
}
