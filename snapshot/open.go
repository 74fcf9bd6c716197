package snapshot

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// Open returns snapshot id as a stream any node can turn into a database
// (see Restore), or, when installs go by pull (Options.Pull.Address set),
// as a manifest from which another node's sink pulls the files (pull.go).
// It first takes a lease on the snapshot's files, so that
// nothing renames, removes or writes into them until the stream is closed,
// revoked after the idle timeout, or fails. The stream holds about the
// database's size: the chain's files when they are at most 10% larger than
// the database, otherwise one image consolidated from them for this stream
// (see DESIGN.md, "What a stream sends").
func (c *Catalog) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if c.pull.Address != "" {
		return c.offer(id)
	}
	return c.OpenContext(context.Background(), "raft:"+id, id)
}

// OpenContext is Open with a context (ending it revokes the lease) and a
// name for the lease in logs, for readers of the stream other than Raft. It
// always streams the data, whether or not installs go by pull.
//
// If consolidation merged id away or pruning removed it (between Raft's
// List and Open, or while Open waited for its lease behind a
// consolidation), the newest snapshot is streamed instead (see
// leaseChain); the returned meta describes what is actually streamed, and
// Raft's leader takes the index, term and configuration from it.
func (c *Catalog) OpenContext(ctx context.Context, name, id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	plan, lease, image, err := c.acquirePlanned(ctx, name, id)
	if err != nil {
		return nil, nil, err
	}
	meta, st, err := c.openPlanned(plan, lease, image)
	if err != nil {
		lease.Release()
		return nil, nil, err
	}
	return meta, st, nil
}

// acquirePlanned is leaseChain for a stream: the lease also covers image,
// the path of the image to build when the plan sends one ("" otherwise).
func (c *Catalog) acquirePlanned(ctx context.Context, name, id string) (streamPlan, *Lease, string, error) {
	var image string
	plan, lease, err := c.leaseChain(ctx, name, id, func(p streamPlan) []string {
		if image = ""; p.image {
			image = c.newImagePath()
			return []string{image}
		}
		return nil
	})
	return plan, lease, image, err
}

// planOpenLocked plans the stream of id or, if id was retired, of the
// newest snapshot.
func (c *Catalog) planOpenLocked(id string) (streamPlan, error) {
	if _, ok := c.snaps[id]; !ok && c.retired[id] && c.head != "" {
		id = c.head
	}
	return c.planStreamLocked(id)
}

// openPlanned builds the stream of plan under lease (which covers the
// chain, and image when the plan sends one).
func (c *Catalog) openPlanned(plan streamPlan, lease *Lease, image string) (*raft.SnapshotMeta, *stream, error) {
	files := plan.chain
	if plan.image {
		img, err := c.buildImage(lease, plan.chain, image)
		if err != nil {
			err = fmt.Errorf("snapshot %s: consolidate an image to send: %w", plan.meta.ID, err)
			c.errs.set(err)
			return nil, nil, err
		}
		files = []source{img}
	}
	h := plan.header(files)
	hdr, err := encodeHeader(h)
	if err != nil {
		if plan.image {
			c.removeImage(image)
		}
		return nil, nil, err
	}
	meta := plan.meta.SnapshotMeta
	meta.Size, _ = streamLen(h)
	st := &stream{lease: lease, fsys: c.fs, hdr: hdr, files: files}
	if plan.image {
		st.onClose = func() { c.removeImage(image) }
		c.log.Debug("streaming a consolidated image", "id", meta.ID, "chain_files", len(plan.chain),
			"image_bytes", files[0].entry.Size)
	}
	return &meta, st, nil
}

func (c *Catalog) resolveLocked(id string) (*snapMeta, []source, []string, error) {
	m, ok := c.snaps[id]
	if !ok {
		return nil, nil, nil, fmt.Errorf("snapshot %s: not found", id)
	}
	if m.InLiveDB || m.AdoptPath != "" {
		return nil, nil, nil, fmt.Errorf("snapshot %s: %w", id, ErrInLiveDB)
	}
	chain, err := c.chainLocked(id)
	if err != nil {
		return nil, nil, nil, err
	}
	dirs := make([]string, len(chain))
	for i, link := range chain {
		dirs[i] = c.snapDir(link.ID)
	}
	return m, c.sources(chain), dirs, nil
}

func sameSources(a, b []source) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
