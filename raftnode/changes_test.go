package raftnode_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestChangedFires: Node.Changed closes on every node when leadership
// moves, and when the node table changes (a member's client address is
// recorded), and not for ordinary writes.
func TestChangedFires(t *testing.T) {
	c := newCluster(t, 3, nil)
	execute(t, c, "CREATE TABLE t(x)")
	// Every node has applied the bootstrap configuration entry (which fires
	// Changed where it is applied) before the quiet check starts.
	c.waitConverged(30 * time.Second)
	leader := c.leader()
	follower := c.followers()[0]
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(30 * time.Second):
			return false
		}
	}

	quiet, term := follower.Raft.Changed(), follower.Raft.Term()
	execute(t, c, "INSERT INTO t VALUES(1)")
	c.waitConverged(30 * time.Second)
	select {
	case <-quiet:
		if follower.Raft.Term() == term { // an election on a loaded machine would be a real change
			t.Fatal("an ordinary write fired Changed")
		}
	default:
	}

	ch := follower.Raft.Changed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := leader.Raft.Join(ctx, follower.ID, follower.RaftAddr, "127.0.0.1:1", true); err != nil {
		t.Fatal(err)
	}
	if !fired(ch) {
		t.Fatal("recording a client address did not fire Changed on a follower")
	}
	c.eventually(30*time.Second, func() error {
		if got := follower.Raft.NodeAddress(follower.ID); got != "127.0.0.1:1" {
			return fmt.Errorf("node table has %q", got)
		}
		return nil
	})

	chs := map[string]<-chan struct{}{}
	for _, n := range c.nodes {
		chs[n.ID] = n.Raft.Changed()
	}
	if err := leader.Raft.TransferLeadership(ctx, follower.ID); err != nil {
		t.Fatal(err)
	}
	for id, ch := range chs {
		if !fired(ch) {
			t.Fatalf("a leadership transfer did not fire Changed on %s", id)
		}
	}
}
