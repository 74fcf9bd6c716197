// Package eventually waits in tests for a condition that a real cluster
// reaches in its own time: a leader elected, a follower caught up. Tests
// must not depend on how fast the machine is, so the waits are generous and
// the failure names what was still wrong.
package eventually

import (
	"testing"
	"time"
)

// Interval is the pause between two checks.
const Interval = 50 * time.Millisecond

// Within calls check every Interval until it returns nil, and fails the
// test with check's last error once timeout has passed.
func Within(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(Interval)
	}
}
