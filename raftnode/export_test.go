package raftnode

// LeaseEpoch returns n's read lease epoch, which each suspension and each
// resumption of the lease moves (0 with leases off): tests outside the
// package see with it that an operation suspended the lease.
func LeaseEpoch(n *Node) uint64 {
	if n.lease == nil {
		return 0
	}
	n.lease.mu.Lock()
	defer n.lease.mu.Unlock()
	return n.lease.epoch
}
