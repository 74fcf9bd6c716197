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
