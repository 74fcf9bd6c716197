package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/raftnode"
)

// TestRaftTimeoutFlags checks that the Raft timeout flags default to
// raftnode's defaults and that bad combinations are refused naming the
// flags, before anything starts.
func TestRaftTimeoutFlags(t *testing.T) {
	cmd := rootCommand()
	for name, want := range map[string]time.Duration{"raft-heartbeat-timeout": raftnode.DefaultHeartbeatTimeout,
		"raft-election-timeout": raftnode.DefaultElectionTimeout, "raft-leader-lease-timeout": raftnode.DefaultLeaderLeaseTimeout} {
		f := cmd.Flags().Lookup(name)
		if f == nil || f.DefValue != want.String() {
			t.Fatalf("--%s: %v, want default %v", name, f, want)
		}
	}
	if err := raftnode.ValidateRaftTimeouts(raftnode.DefaultHeartbeatTimeout, raftnode.DefaultElectionTimeout,
		raftnode.DefaultLeaderLeaseTimeout); err != nil {
		t.Fatalf("the defaults do not pass: %v", err)
	}
	const s = time.Second
	cases := []struct {
		heartbeat, election, lease time.Duration
		errHas                     string // "" when valid
	}{
		{2 * s, 2 * s, s, ""},
		{s, 3 * s, s, ""},
		{s, s, 2 * s, "--raft-leader-lease-timeout (2s) must not exceed --raft-heartbeat-timeout (1s)"},
		{2 * s, s, s, "--raft-election-timeout (1s) must not be shorter than --raft-heartbeat-timeout (2s)"},
		{0, s, s, "--raft-heartbeat-timeout (0s) must be at least 5ms"},
		{s, -s, s, "--raft-election-timeout (-1s) must be at least 5ms"},
		{s, s, 0, "--raft-leader-lease-timeout (0s) must be at least 5ms"},
	}
	for _, tc := range cases {
		c := config{raftHeartbeatTimeout: tc.heartbeat, raftElectionTimeout: tc.election, raftLeaderLeaseTimeout: tc.lease}
		err := c.validate()
		if tc.errHas == "" && err != nil {
			t.Errorf("%v/%v/%v: %v", tc.heartbeat, tc.election, tc.lease, err)
		}
		if tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("%v/%v/%v: got %v, want an error containing %q", tc.heartbeat, tc.election, tc.lease, err, tc.errHas)
		}
	}
}

// The read lease defaults to 500 ms, or a quarter of a shorter heartbeat
// timeout; one given explicitly is checked, naming the flag.
func TestReadLeaseFlag(t *testing.T) {
	if f := rootCommand().Flags().Lookup("read-lease"); f == nil || f.DefValue != raftnode.DefaultReadLease.String() {
		t.Fatalf("--read-lease: %v, want default %v", f, raftnode.DefaultReadLease)
	}
	const s = time.Second
	for _, tc := range []struct {
		heartbeat, lease time.Duration
		chosen           bool
		want             time.Duration
		errHas           string
	}{
		{2 * s, raftnode.DefaultReadLease, false, 500 * time.Millisecond, ""},
		{s, raftnode.DefaultReadLease, false, 250 * time.Millisecond, ""},
		{s, 0, true, 0, ""},
		{2 * s, 600 * time.Millisecond, true, 0, "--read-lease (600ms) must be between 0 and a quarter of --raft-heartbeat-timeout (500ms)"},
	} {
		c := config{raftHeartbeatTimeout: tc.heartbeat, raftElectionTimeout: tc.heartbeat, raftLeaderLeaseTimeout: tc.heartbeat, readLease: tc.lease}
		c.defaultReadLease(tc.chosen)
		err := c.validate()
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%+v: got %v, want an error containing %q", tc, err, tc.errHas)
			}
			continue
		}
		if err != nil || c.readLease != tc.want {
			t.Errorf("%+v: lease %v, err %v; want %v", tc, c.readLease, err, tc.want)
		}
	}
}
