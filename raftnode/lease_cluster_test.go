package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
)

func withReadLease(_ int, cfg *raftnode.Config) { cfg.ReadLease = raftnode.DefaultReadLease }

// With read leases on, linearizable reads on the leader are served under
// the lease (few renewal rounds for many reads) and still see every write
// acknowledged before them.
func TestLeaseReadsSeeEveryAcknowledgedWrite(t *testing.T) {
	c := newCluster(t, 3, withReadLease)
	execute(t, c, "CREATE TABLE t(x)")
	leader := c.leader().Raft
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		res, err := leader.Execute(ctx, stmts(fmt.Sprintf("INSERT INTO t VALUES(%d)", i)), false)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := leader.LinearizableRead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if idx < res.Index {
			t.Fatalf("read at %d after a write acknowledged at %d", idx, res.Index)
		}
	}
	st := leader.Status()
	if st.LeaseReads == 0 {
		t.Fatalf("no read used the lease: %+v", st)
	}
	if st.LeaseRenewals > st.LeaseReads {
		t.Fatalf("%d renewals for %d lease reads", st.LeaseRenewals, st.LeaseReads)
	}
	t.Logf("%d linearizable reads: %d under the lease, %d renewals, %d rounds", st.LinearizableReads,
		st.LeaseReads, st.LeaseRenewals, st.ReadIndexRounds)
}

// A leadership transfer suspends the old leader's lease for as long as it
// runs (followers vote for its target despite their leader), the old leader
// refuses linearizable reads once it has stepped down, and the new one
// reads everything written before.
func TestLeaseEndsWithLeadershipTransfer(t *testing.T) {
	c := newCluster(t, 3, withReadLease)
	execute(t, c, "CREATE TABLE t(x)", "INSERT INTO t VALUES(1)")
	old := c.leader()
	ctx := context.Background()
	c.eventually(clusterTimeout, func() error { // until the old leader reads under its lease
		if _, err := old.Raft.LinearizableRead(ctx); err != nil {
			return err
		}
		if old.Raft.Status().LeaseReads == 0 {
			return errors.New("no lease yet")
		}
		return nil
	})
	epoch := raftnode.LeaseEpoch(old.Raft)
	if err := old.Raft.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := raftnode.LeaseEpoch(old.Raft); got != epoch+2 {
		t.Fatalf("lease epoch %d after the transfer, want %d: the transfer did not suspend and resume the lease", got, epoch+2)
	}
	if _, err := old.Raft.LinearizableRead(ctx); !errors.Is(err, raftnode.ErrNotLeader) && !errors.Is(err, raftnode.ErrNoLeader) {
		t.Fatalf("the old leader's read after the transfer: %v, want not leader", err)
	}
	execute(t, c, "INSERT INTO t VALUES(2)")
	next := c.leader()
	if next == old {
		t.Fatal("leadership did not move")
	}
	idx, err := next.Raft.LinearizableRead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if applied := next.Raft.Status().AppliedIndex; idx > applied {
		t.Fatalf("read at %d, applied %d", idx, applied)
	}
}

// A voter answers a lease question only for the leader it follows, in its
// term; the leader itself and a wrong term or leader get no.
func TestLeaseGrantAnswers(t *testing.T) {
	c := newCluster(t, 3, withReadLease)
	leader := c.leader()
	term := leader.Raft.Status().Term
	follower := c.followers()[0]
	ask := func(n *testNode, leaderID string, term uint64) *sqlraftv1.GrantResponse {
		t.Helper()
		cc, err := grpc.NewClient(n.RaftAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := sqlraftv1.NewReadLeaseServiceClient(cc).Grant(ctx, &sqlraftv1.GrantRequest{LeaderId: leaderID, Term: term})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := ask(follower, leader.ID, term); !r.GetFollowing() || r.GetContactAgeMicros() <= 0 ||
		r.GetContactAgeMicros() > int64(raftnode.DefaultHeartbeatTimeout/time.Microsecond) {
		t.Fatalf("follower's answer to its leader: %+v", r)
	}
	for _, q := range []struct {
		n      *testNode
		leader string
		term   uint64
	}{{follower, follower.ID, term}, {follower, leader.ID, term + 1}, {follower, leader.ID, term - 1}, {leader, leader.ID, term}} {
		if r := ask(q.n, q.leader, q.term); r.GetFollowing() {
			t.Fatalf("%s answered yes to %s in term %d (leader %s, term %d)", q.n.ID, q.leader, q.term, leader.ID, term)
		}
	}
}
