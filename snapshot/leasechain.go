package snapshot

import "context"

// leaseChain resolves snapshot id (or, if consolidation merged it away or
// pruning removed it, the newest snapshot: see OpenContext) and takes a
// lease named name on its chain's directories, plus whatever paths extra
// adds for the plan (an image a stream builds for itself; nil for none).
// It plans, acquires, and plans again under the lease: if the chain changed
// while the lease was being acquired (a consolidation rewrote it, or id was
// retired meanwhile), it drops the lease and starts over, so the lease it
// returns always covers exactly the files of the plan it returns. Every
// reader of snapshot files (Raft's streams, backups) starts here.
func (c *Catalog) leaseChain(ctx context.Context, name, id string, extra func(streamPlan) []string) (streamPlan, *Lease, error) {
	for {
		c.mu.Lock()
		plan, err := c.planOpenLocked(id)
		c.mu.Unlock()
		if err != nil {
			return streamPlan{}, nil, err
		}
		if err := c.hook.at("open.planned"); err != nil {
			return streamPlan{}, nil, err
		}
		paths := plan.dirs
		if extra != nil {
			paths = append(append([]string(nil), paths...), extra(plan)...)
		}
		lease, err := c.leases.Acquire(ctx, name, paths...)
		if err != nil {
			return streamPlan{}, nil, err
		}
		c.mu.Lock()
		again, err := c.planOpenLocked(id)
		c.mu.Unlock()
		if err != nil || again.meta.ID != plan.meta.ID || !sameSources(plan.chain, again.chain) {
			lease.Release() // consolidated or pruned meanwhile; resolve again
			if err != nil {
				return streamPlan{}, nil, err
			}
			continue
		}
		if plan.meta.ID != id {
			c.log.Info("snapshot merged away or pruned before it was opened; streaming the newest instead",
				"requested", id, "streaming", plan.meta.ID, "lease", name)
		}
		return plan, lease, nil
	}
}
