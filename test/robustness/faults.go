//go:build robustness

package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// fault is one kind of failure the suite injects while the workloads run.
// inject does it (once or repeatedly) within hold, undoes it, and returns a
// line saying what it did; the cluster is healed (every process running,
// every link clean) when it returns.
type fault struct {
	name string
	// flags are extra sqlraftd flags the scenario's cluster needs.
	flags  []string
	inject func(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error)
	// prepare, when set, runs before the cluster starts, with the
	// scenario's directory (node i's data directory is dir/n<i>).
	prepare func(t *testing.T, dir string)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

var faults = []fault{
	{name: "kill-leader", inject: func(ctx context.Context, c *cluster, _ *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		c.kill(l)
		sleep(ctx, hold)
		c.start(l)
		return fmt.Sprintf("SIGKILL leader %s, restarted after %v on its data dir", l.name, hold), nil
	}},
	{name: "kill-follower", inject: func(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		f := c.followers(l)[rng.IntN(2)]
		c.kill(f)
		sleep(ctx, hold)
		c.start(f)
		return fmt.Sprintf("SIGKILL follower %s, restarted after %v", f.name, hold), nil
	}},
	{name: "pause-leader", inject: func(ctx context.Context, c *cluster, _ *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		l.signal(syscall.SIGSTOP)
		sleep(ctx, hold)
		l.signal(syscall.SIGCONT)
		return fmt.Sprintf("SIGSTOP leader %s for %v, then SIGCONT", l.name, hold), nil
	}},
	{name: "partition-leader", inject: func(ctx context.Context, c *cluster, _ *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		bh := linkFault{Blackhole: true}
		for _, f := range c.followers(l) {
			c.setLink(l, f, bh, bh)
			c.setLink(f, l, bh, bh)
		}
		sleep(ctx, hold)
		c.healAll()
		return fmt.Sprintf("blackholed leader %s from both followers (both ways) for %v, healed", l.name, hold), nil
	}},
	{name: "drop-one-way", inject: func(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		f := c.followers(l)[rng.IntN(2)]
		c.setLink(l, f, linkFault{Drop: true}, linkFault{})
		sleep(ctx, hold)
		c.healAll()
		return fmt.Sprintf("dropped leader %s → %s bytes (one way) for %v", l.name, f.name, hold), nil
	}},
	{name: "latency", inject: func(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error) {
		l := c.leader(30 * time.Second)
		f := c.followers(l)[rng.IntN(2)]
		slow := linkFault{Delay: 150 * time.Millisecond, Jitter: 100 * time.Millisecond}
		c.setLink(l, f, slow, slow)
		c.setLink(f, l, slow, slow)
		sleep(ctx, hold)
		c.healAll()
		return fmt.Sprintf("150±100 ms each way on %s ↔ %s for %v", l.name, f.name, hold), nil
	}},
	{name: "snapshot-storm", flags: []string{"--snapshot-threshold", "64", "--trailing-logs", "16", "--snapshot-interval", "200ms"},
		inject: snapshotStorm},
	{name: "membership", inject: removeAndRejoin},
	{name: "disk-full-follower", prepare: mountSmallDisk, inject: fillDisk},
}

// diskNode is the node whose data directory is a bounded tmpfs in the
// disk-full scenario, and diskSize its size.
const (
	diskNode = 2
	diskSize = "256m"
)

// mountSmallDisk mounts a tmpfs of diskSize on node diskNode's data
// directory (unmounted when the test ends, after the processes). It needs
// the right to mount; without it the scenario is skipped, saying so.
func mountSmallDisk(t *testing.T, dir string) {
	d := filepath.Join(dir, nodeName(diskNode))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+diskSize, "tmpfs", d).CombinedOutput(); err != nil {
		t.Skipf("disk-full needs a tmpfs mount (root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", d).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", d, err, out)
		}
	})
}

// fillDisk fills the follower's disk to the last byte, holds, and frees it.
// The node must keep or regain its place: no acknowledged write lost, and
// it converges once space returns.
func fillDisk(ctx context.Context, c *cluster, _ *rand.Rand, hold time.Duration) (string, error) {
	nd := c.nodes[diskNode]
	if l := c.leader(30 * time.Second); l == nd {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.admin(nd).TransferLeadership(tctx, &sqlraftv1.TransferLeadershipRequest{})
		cancel()
		if err != nil {
			return "", fmt.Errorf("move leadership off %s: %w", nd.name, err)
		}
		c.eventually(30*time.Second, func() error {
			if c.leader(30*time.Second) == nd {
				return fmt.Errorf("%s still leads", nd.name)
			}
			return nil
		})
	}
	filler := filepath.Join(nd.dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		return "", err
	}
	chunk := make([]byte, 1<<20)
	var filled int64
	for {
		n, err := f.Write(chunk)
		filled += int64(n)
		if err != nil {
			break // ENOSPC: the disk is full
		}
	}
	f.Close()
	sleep(ctx, hold)
	if err := os.Remove(filler); err != nil {
		return "", err
	}
	return fmt.Sprintf("filled follower %s's %s disk (%d MiB) for %v, then freed it", nd.name, diskSize, filled>>20, hold), nil
}

// snapshotStorm forces snapshots on the leader in a loop while a follower
// is cut off; with the tiny thresholds the leader's log moves past the
// follower, which must catch up by a snapshot install when it returns.
func snapshotStorm(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error) {
	l := c.leader(30 * time.Second)
	f := c.followers(l)[rng.IntN(2)]
	cut, err := c.status(f)
	if err != nil {
		return "", err
	}
	bh := linkFault{Blackhole: true}
	c.setLink(l, f, bh, bh)
	c.setLink(f, l, bh, bh)
	other := c.followers(l)[0]
	if other == f {
		other = c.followers(l)[1]
	}
	c.setLink(other, f, bh, bh)
	c.setLink(f, other, bh, bh)
	forced := 0
	end := time.Now().Add(hold)
	for time.Now().Before(end) && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := c.admin(l).Snapshot(sctx, &sqlraftv1.SnapshotRequest{}); err == nil {
			forced++
		}
		cancel()
		sleep(ctx, 200*time.Millisecond)
	}
	ls, err := c.status(l)
	c.healAll()
	if err != nil {
		return "", err
	}
	if ls.GetFirstLogIndex() <= cut.GetAppliedIndex()+1 {
		return "", fmt.Errorf("the leader's log (from %d) still holds what %s lacks (after %d): no install would be needed",
			ls.GetFirstLogIndex(), f.name, cut.GetAppliedIndex())
	}
	return fmt.Sprintf("cut off %s at index %d, forced %d snapshots on leader %s (log then from %d), healed: catch-up only by install",
		f.name, cut.GetAppliedIndex(), forced, l.name, ls.GetFirstLogIndex()), nil
}

// removeAndRejoin removes a follower under load, stops it, wipes its data
// directory and starts it again with --join: it re-enters as a new member
// with the same ID.
func removeAndRejoin(ctx context.Context, c *cluster, rng *rand.Rand, hold time.Duration) (string, error) {
	l := c.leader(30 * time.Second)
	f := c.followers(l)[rng.IntN(2)]
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := c.admin(l).Remove(rctx, &sqlraftv1.RemoveRequest{Id: f.name})
	cancel()
	if err != nil {
		return "", fmt.Errorf("remove %s: %w", f.name, err)
	}
	c.kill(f)
	if err := os.RemoveAll(f.dir); err != nil {
		return "", err
	}
	sleep(ctx, hold)
	if !slices.Contains(f.args, "--join") {
		f.args = append(f.args, "--join", l.client.Addr())
	}
	c.start(f)
	return fmt.Sprintf("removed %s, wiped it, re-joined after %v", f.name, hold), nil
}
