package raftnode

import (
	"time"
)

// A follower installs a snapshot received from the leader by moving its
// files into the live database (snapshot/adopt.go). The store then keeps
// that snapshot's meta but no files, so it cannot send it to another node
// or restore from it until a new snapshot, necessarily full, replaces it.
// Raft would take that snapshot only after SnapshotThreshold more entries,
// which may be hours on a quiet cluster, and this node may lead before
// then; so the node takes it at once, in the background.

// snapshotAfterInstall asks for a snapshot as soon as the store's newest
// snapshot has no files (after an install, or at start after a crash that
// followed one), and again after a second, growing to 30 s, for as long as
// that lasts and the node is open.
func (n *Node) snapshotAfterInstall() {
	const first, most = time.Second, 30 * time.Second
	for {
		select {
		case <-n.closing.Done():
			return
		case <-n.installed:
		}
		for wait := first; ; wait = min(2*wait, most) {
			latest, ok := n.snapshots.Latest()
			if !ok || !latest.InLiveDB {
				break
			}
			if err := n.raft.Snapshot().Error(); err != nil {
				n.logger.Info("snapshot after an install failed; trying again", "error", err, "in", wait)
			} else {
				continue // check the store again
			}
			select {
			case <-n.closing.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// noteInstall wakes snapshotAfterInstall (the FSM calls it after every
// install; it never blocks).
func (n *Node) noteInstall() {
	select {
	case n.installed <- struct{}{}:
	default:
	}
}
