package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Installs by pull (see DESIGN.md, "Installs by pull"). Raft's transport
// sends a snapshot in 16 KiB messages on a call with no deadline. With
// PullOptions.Address set, the stream Open hands Raft is only a manifest:
// where to pull the files from and a single-use token. The follower's sink
// pulls them through PullOptions.Fetch (a gRPC stream of large messages,
// raftnode's SnapshotPullService), verifying each file's checksum as it
// arrives; the leader serves them with ServePull under the lease Open took.

// tokenBytes is the size of an offer's token (hex-encoded in the manifest).
const tokenBytes = 16

// PullChunkBytes is the most data a pull reads from a file at a time, and
// so the size of its messages: just under 1 MiB, so that a message with its
// few bytes of framing fits the largest buffer grpc-go pools (1 MiB)
// rather than being allocated afresh.
const PullChunkBytes = 1<<20 - 1<<10

// ErrOfferNotFound is returned by ServePull for a token this node does not
// offer (never did, or the offer ended: Raft's call returned, the lease was
// revoked, or the offer was already pulled).
var ErrOfferNotFound = errors.New("snapshot offer not found")

// PullOptions turn on installs by pull.
type PullOptions struct {
	// Address is where other nodes reach this node's pull service (its
	// Raft address). When empty, Open hands Raft the snapshot's data, as
	// before.
	Address string
	// Fetch opens the pull a manifest offers; a sink that receives a
	// manifest calls it. When nil, such a sink fails.
	Fetch Fetcher
}

// Fetcher opens the pull manifest m offers, from the node at m.Address.
// Ending ctx must end the pull.
type Fetcher func(ctx context.Context, m Manifest) (*Pull, error)

// Manifest is what Raft's InstallSnapshot carries when installs go by
// pull: which snapshot, and where and with what token to pull its files.
type Manifest struct {
	ID      string `json:"id"`
	Index   uint64 `json:"index"`
	Term    uint64 `json:"term"`
	DBSize  int64  `json:"db_size,omitempty"`
	Address string `json:"address"`
	Token   string `json:"token"`
}

// PullFile describes one file of a pull.
type PullFile struct {
	// Name is "db" for the database, "wal" for a WAL file to checkpoint
	// into it.
	Name string
	// Size is the file's length in bytes.
	Size int64
	// CRC32C is the lowercase hex CRC-32C of its content, or empty when
	// the file's snapshot recorded its SHA256 instead (an older version
	// wrote it).
	CRC32C string
	// SHA256 is the lowercase hex sha256 of its content, or empty.
	SHA256 string
}

// Pull is one pull, on either side: the files, the size of the database
// they restore to, and their bytes back to back in Body. Close Body when
// done; on the serving side that ends the offer and releases its lease.
type Pull struct {
	Files  []PullFile
	DBSize int64
	Body   io.ReadCloser
	// Done, on the serving side, is closed when the offer ends (its lease
	// was released or revoked); Err then says why. Nil on the pulling side.
	Done  <-chan struct{}
	lease *Lease
}

// Err says why the offer ended (nil while it lasts, and on the pulling
// side).
func (p *Pull) Err() error {
	if p.lease == nil {
		return nil
	}
	return p.lease.Err()
}

// offerTable holds the offers this node's Raft made (one per
// InstallSnapshot call in progress). Its mu guards offers.
type offerTable struct {
	mu     sync.Mutex
	offers map[string]*pullOffer
}

func (t *offerTable) add(o *pullOffer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.offers == nil {
		t.offers = map[string]*pullOffer{}
	}
	t.offers[o.token] = o
}

func (t *offerTable) remove(o *pullOffer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.offers[o.token] == o {
		delete(t.offers, o.token)
	}
}

// take marks the offer token names as pulled: an offer is pulled once.
func (t *offerTable) take(token, id string) (*pullOffer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.offers[token]
	switch {
	case !ok:
		return nil, ErrOfferNotFound
	case o.plan.meta.ID != id:
		return nil, fmt.Errorf("%w: the token offers snapshot %s, not %s", ErrOfferNotFound, o.plan.meta.ID, id)
	case o.taken:
		return nil, fmt.Errorf("%w: snapshot %s is already being pulled with this token", ErrOfferNotFound, id)
	}
	o.taken = true
	return o, nil
}

// Offers is the number of offers open: Raft InstallSnapshot calls whose
// files can still be pulled.
func (t *offerTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, o := range t.offers {
		if o.lease.Err() == nil { // its end may not have removed it yet
			n++
		}
	}
	return n
}

// pullOffer is the reader Open returns when installs go by pull: reading
// it yields the manifest. It holds the lease on the snapshot's files (and
// the image path, if the pull is to send an image) from Open until it ends:
// when Raft closes it (its InstallSnapshot call returned), when the pull
// ends, or when the lease is revoked (idle, or the pull's context ended).
type pullOffer struct {
	c        *Catalog
	token    string
	plan     streamPlan
	lease    *Lease
	image    string // where ServePull builds the image, if plan.image
	manifest []byte // what Read has not returned yet
	taken    bool   // guarded by the table's mu
	endOnce  sync.Once
}

// Read returns the manifest.
func (o *pullOffer) Read(p []byte) (int, error) {
	if len(o.manifest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, o.manifest)
	o.manifest = o.manifest[n:]
	o.lease.Touch()
	return n, nil
}

// Close ends the offer: a pull still running fails, and the lease is
// released.
func (o *pullOffer) Close() error {
	o.end()
	return nil
}

func (o *pullOffer) end() {
	o.endOnce.Do(func() {
		o.c.offers.remove(o)
		o.lease.Release()
	})
}

// offer is Open when installs go by pull: the snapshot is planned and
// leased as for a stream, but no image is built yet (ServePull builds it if
// the follower pulls), and the reader yields a manifest.
func (c *Catalog) offer(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	plan, lease, image, err := c.acquirePlanned(context.Background(), "raft:"+id, id)
	if err != nil {
		return nil, nil, err
	}
	token := make([]byte, tokenBytes)
	if _, err := rand.Read(token); err != nil {
		lease.Release()
		return nil, nil, err
	}
	b, err := encodeFramed(pullMagic, c.manifestOf(plan, hex.EncodeToString(token)))
	if err != nil {
		lease.Release()
		return nil, nil, err
	}
	o := &pullOffer{c: c, token: hex.EncodeToString(token), plan: plan, lease: lease, image: image, manifest: b}
	c.offers.add(o)
	context.AfterFunc(lease.ctx, o.end) // revoked (idle): the offer ends too
	meta := plan.meta.SnapshotMeta
	meta.Size = int64(len(b))
	return &meta, o, nil
}

func (c *Catalog) manifestOf(plan streamPlan, token string) Manifest {
	m := plan.meta
	return Manifest{ID: m.ID, Index: m.Index, Term: m.Term, DBSize: plan.dbSize, Address: c.pull.Address, Token: token}
}

// manifestLen is the length of the manifest Open will return for plan
// (what List reports as the snapshot's size when installs go by pull).
func (c *Catalog) manifestLen(plan streamPlan) (int64, error) {
	b, err := encodeFramed(pullMagic, c.manifestOf(plan, strings.Repeat("0", 2*tokenBytes)))
	return int64(len(b)), err
}

// ServePull serves the pull of the offer token names, for snapshot id: the
// chain's files as they are, or an image consolidated from them now (see
// "What a stream sends"), read through the offer's lease and verified
// against their checksums as they are read. Closing the returned Body, or ctx
// ending, ends the offer and releases the lease; so does Raft's call
// ending, or the lease's idle timeout, after which Body's reads fail.
func (c *Catalog) ServePull(ctx context.Context, token, id string) (*Pull, error) {
	o, err := c.offers.take(token, id)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, o.end)
	files := o.plan.chain
	if o.plan.image {
		img, err := c.buildImage(o.lease, o.plan.chain, o.image)
		if err != nil {
			stop()
			o.end()
			err = fmt.Errorf("snapshot %s: consolidate an image to send: %w", id, err)
			c.errs.set(err)
			return nil, err
		}
		files = []source{img}
	}
	st := &stream{lease: o.lease, fsys: c.fs, files: files, chunk: PullChunkBytes}
	if c.onSend != nil {
		st.chunk, st.onRead = 16<<10, c.onSend
	}
	st.onClose = func() {
		stop()
		o.end()
		if o.plan.image {
			c.removeImage(o.image)
		}
	}
	h := o.plan.header(files)
	p := &Pull{DBSize: h.DBSize, Body: st, Done: o.lease.ctx.Done(), lease: o.lease}
	for _, f := range h.Files {
		p.Files = append(p.Files, PullFile{Name: f.Name, Size: f.Size, CRC32C: f.CRC32C, SHA256: f.SHA256})
	}
	c.log.Debug("serving a snapshot pull", "id", id, "files", len(files), "image", o.plan.image)
	return p, nil
}

// receivePull is a sink's side of a manifest: once the stream (the
// manifest) has ended cleanly, it pulls the files through Fetch into dir,
// verifying each.
func (c *Catalog) receivePull(ctx context.Context, r io.Reader, js []byte, dir string) (recvResult, error) {
	var m Manifest
	if err := json.Unmarshal(js, &m); err != nil {
		return recvResult{}, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	if m.Address == "" || m.Token == "" || m.ID == "" {
		return recvResult{}, fmt.Errorf("%w: manifest without address, token or id", ErrFormat)
	}
	if err := expectEnd(r); err != nil {
		return recvResult{}, err
	}
	if c.pull.Fetch == nil {
		return recvResult{}, fmt.Errorf("snapshot %s: received a pull manifest, but this store cannot pull", m.ID)
	}
	p, err := c.pull.Fetch(ctx, m)
	if err != nil {
		return recvResult{}, fmt.Errorf("pull snapshot %s from %s: %w", m.ID, m.Address, err)
	}
	defer p.Body.Close()
	entries := make([]fileEntry, len(p.Files))
	for i, f := range p.Files {
		entries[i] = fileEntry{Name: f.Name, Size: f.Size, CRC32C: f.CRC32C, SHA256: f.SHA256}
	}
	if err := checkEntries(entries); err != nil {
		return recvResult{}, fmt.Errorf("pull snapshot %s from %s: %w", m.ID, m.Address, err)
	}
	var body io.Reader = p.Body
	if c.onReceive != nil {
		body = hookedReader{r: body, hook: c.onReceive}
	}
	start := time.Now()
	res, err := c.receiveFiles(body, entries, p.DBSize, dir)
	if err != nil {
		return recvResult{}, fmt.Errorf("pull snapshot %s from %s: %w", m.ID, m.Address, err)
	}
	var n int64
	for _, f := range res.files {
		n += f.Size
	}
	secs := time.Since(start).Seconds()
	c.log.Info("snapshot pulled", "id", m.ID, "from", m.Address, "files", len(res.files), "bytes", n,
		"seconds", secs, "mb_per_s", float64(n)/1e6/max(secs, 1e-9))
	return res, nil
}

// expectEnd reads r to its end, failing if anything is left.
func expectEnd(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n != 0 {
		return fmt.Errorf("%w: trailing bytes after the manifest", ErrFormat)
	}
	if err != io.EOF {
		return err
	}
	return nil
}

// hookedReader calls hook with the size of every read (Options.OnReceive).
type hookedReader struct {
	r    io.Reader
	hook func(n int)
}

// Read reads at most 16 KiB from r (the size of Raft's own messages, so
// that a hook that sleeps slows a pull as it slows an inline stream), then
// calls hook.
func (h hookedReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p[:min(len(p), 16<<10)])
	if n > 0 {
		h.hook(n)
	}
	return n, err
}
