package raftnode

import (
	"sync"
	"time"
)

// applyLag tells whether the FSM keeps up with the commit index: it is
// current when, at some moment within the last bound, it had applied
// everything that was committed at that moment. A node whose FSM is stuck
// (or far behind, replaying after a restart) is not, however long its Raft
// log keeps growing: health must not say SERVING while reads there return
// ever older data and writes there never finish applying.
//
// It samples: each check that finds the FSM behind remembers the commit
// index of that moment as a target, and the first later check that finds
// the target applied dates the node's currency to when the target was set.
// Checks come from the health loop every 200 ms, so currency is known to
// about that precision.
type applyLag struct {
	bound time.Duration

	mu           sync.Mutex
	target       uint64    // commit index to reach; 0 when none is pending
	targetSince  time.Time // when target was the commit index
	currentSince time.Time // latest moment whose commit index is applied
}

func newApplyLag(bound time.Duration) *applyLag { return &applyLag{bound: bound} }

// check records a sample and reports whether the FSM is current. applied is
// the FSM's index, commit the commit index, and reached tells whether the
// FSM state includes entry i (entries the FSM never sees count as applied).
func (a *applyLag) check(now time.Time, applied, commit uint64, reached func(i uint64) bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.target != 0 && (applied >= a.target || reached(a.target)) {
		a.currentSince, a.target = a.targetSince, 0
	}
	if applied >= commit || reached(commit) {
		a.currentSince, a.target = now, 0
	} else if a.target == 0 {
		a.target, a.targetSince = commit, now
	}
	return !a.currentSince.IsZero() && now.Sub(a.currentSince) <= a.bound
}
