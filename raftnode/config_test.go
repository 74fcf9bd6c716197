package raftnode

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestRaftTimeouts checks how zero Raft timeouts are filled in and which
// combinations are refused, and that hashicorp/raft accepts what passes.
func TestRaftTimeouts(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name                       string
		heartbeat, election, lease time.Duration
		want                       [3]time.Duration // when no error
		errHas                     string
	}{
		{"defaults", 0, 0, 0, [3]time.Duration{DefaultHeartbeatTimeout, DefaultElectionTimeout, DefaultLeaderLeaseTimeout}, ""},
		{"short heartbeat caps the default lease", 500 * time.Millisecond, 0, 0,
			[3]time.Duration{500 * time.Millisecond, DefaultElectionTimeout, 500 * time.Millisecond}, ""},
		{"long heartbeat raises the default election timeout", 10 * s, 0, 0,
			[3]time.Duration{10 * s, 10 * s, DefaultLeaderLeaseTimeout}, ""},
		{"all given", 3 * s, 4 * s, s, [3]time.Duration{3 * s, 4 * s, s}, ""},
		{"lease longer than heartbeat", s, s, 2 * s, [3]time.Duration{}, "leader lease timeout (2s) must not exceed the heartbeat timeout (1s)"},
		{"election shorter than heartbeat", 2 * s, s, s, [3]time.Duration{}, "election timeout (1s) must not be shorter than the heartbeat timeout (2s)"},
		{"negative", -s, 0, 0, [3]time.Duration{}, "heartbeat timeout (-1s) must be at least 5ms"},
		{"too short", s, s, time.Millisecond, [3]time.Duration{}, "leader lease timeout (1ms) must be at least 5ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0",
				HeartbeatTimeout: tc.heartbeat, ElectionTimeout: tc.election, LeaderLeaseTimeout: tc.lease}
			err := c.defaults()
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %v, want an error containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]time.Duration{c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout}; got != tc.want {
				t.Fatalf("timeouts %v, want %v", got, tc.want)
			}
			rc := c.raftConfig()
			if rc.HeartbeatTimeout != tc.want[0] || rc.ElectionTimeout != tc.want[1] || rc.LeaderLeaseTimeout != tc.want[2] {
				t.Fatalf("raft.Config has %v/%v/%v", rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout)
			}
			if err := raft.ValidateConfig(rc); err != nil {
				t.Fatalf("hashicorp/raft refuses what passed: %v", err)
			}
		})
	}
}
