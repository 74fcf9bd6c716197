package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// Client talks to a sqlraft cluster through any of its nodes. It is safe for
// concurrent use; create one per cluster and share it.
type Client struct {
	opts  options
	addrs []string // the addresses New was given

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn // by address, opened on first use
	current int                         // index in addrs of the node used when no leader is known
	leader  string                      // client address of the leader, "" when unknown
	closed  bool
}

// New returns a client for the cluster whose nodes' client (gRPC) addresses
// are addrs ("host:port"). One reachable node is enough: the client learns
// the leader from response headers and NOT_LEADER answers. Connections are
// opened on first use, so New does not fail when nodes are down.
func New(addrs []string, opts ...Option) (*Client, error) {
	var clean []string
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a != "" {
			clean = append(clean, a)
		}
	}
	if len(clean) == 0 {
		return nil, errors.New("client: no node address given")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		return nil, fmt.Errorf("client: backoff base %v and max %v: need 0 < base <= max", o.backoffBase, o.backoffMax)
	}
	if o.maxMessageSize <= 0 {
		return nil, fmt.Errorf("client: max message size %d must be positive", o.maxMessageSize)
	}
	c := &Client{opts: o, addrs: clean, conns: map[string]*grpc.ClientConn{}}
	// Open the first connection now so a malformed address fails here.
	if _, err := c.conn(clean[0]); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes every connection. Calls in flight fail; later calls return
// an error.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	c.conns = nil
	return errors.Join(errs...)
}

// Leader returns the client address of the leader as last learned, or ""
// when it is not known.
func (c *Client) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Addresses returns the node addresses the client was created with.
func (c *Client) Addresses() []string { return append([]string(nil), c.addrs...) }

// conn returns the connection to addr, opening it on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	creds := c.opts.transport
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.opts.maxMessageSize),
			grpc.MaxCallSendMsgSize(c.opts.maxMessageSize)),
	}
	if c.opts.authorization != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(headerCredentials{value: c.opts.authorization}))
	}
	cc, err := grpc.NewClient(addr, append(dial, c.opts.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// route says where a call goes when the caller did not name a node.
type route int

const (
	toLeader route = iota // writes and non-NONE reads: the leader if known
	toAny                 // NONE reads and node-local calls: the current node
)

// target picks the address for the next attempt.
func (c *Client) target(rt route, co callOptions) string {
	if co.at != "" {
		return co.at
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt == toLeader && c.leader != "" {
		return c.leader
	}
	return c.addrs[c.current]
}

// failed notes that addr did not serve a call: it is no longer taken for
// the leader, and the next attempt without a leader goes to the next node.
func (c *Client) failed(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
	if c.addrs[c.current] == addr {
		c.current = (c.current + 1) % len(c.addrs)
	}
}

// learnLeader records the leader's client address from a response header
// or a NOT_LEADER answer.
func (c *Client) learnLeader(addr string) {
	if addr == "" {
		return
	}
	c.mu.Lock()
	c.leader = addr
	c.mu.Unlock()
}

// attempt is one try of a call against a connection; it returns the
// response header (for leader discovery) or the error.
type attempt func(ctx context.Context, cc *grpc.ClientConn) (*sqlraftv1.ResponseHeader, error)

// maxRedirects bounds how many NOT_LEADER answers one call follows at once
// (without pausing); more means leadership is moving, and the call pauses.
const maxRedirects = 3

// invoke runs one call with the client's routing and retry policy.
func (c *Client) invoke(ctx context.Context, kind opKind, rt route, callOpts []CallOption, try attempt) error {
	var co callOptions
	for _, o := range callOpts {
		o(&co)
	}
	if c.opts.noForward || co.noForward {
		ctx = metadata.AppendToOutgoingContext(ctx, MetadataNoForward, "true")
	}
	start := time.Now()
	pause := c.opts.backoffBase
	redirects := 0
	var retried error // the last error that was retried
	for n := 1; ; n++ {
		addr := c.target(rt, co)
		cc, err := c.conn(addr)
		if err != nil {
			return err
		}
		hdr, err := try(ctx, cc)
		if err == nil {
			c.learnLeader(hdr.GetLeaderAddress())
			return nil
		}
		if ctx.Err() != nil {
			if retried != nil { // say why the call was still retrying
				err = fmt.Errorf("%w (then the context ended: %v)", retried, err)
			}
			return wrapAttempts(n, err)
		}
		v := classify(err, kind, c.opts.retryUnknown || co.idempotent)
		if v == redirect {
			leaderAddr := ErrorInfo(err).GetMetadata()["leader_address"]
			if co.at != "" {
				return wrapAttempts(n, err)
			}
			if leaderAddr != "" && leaderAddr != addr && redirects < maxRedirects {
				redirects++
				c.learnLeader(leaderAddr)
				continue
			}
			v = retry
		}
		if v == giveUp {
			return wrapAttempts(n, err)
		}
		c.failed(addr)
		redirects, retried = 0, err
		if serr := c.sleep(ctx, start, pause); serr != nil {
			return wrapAttempts(n, fmt.Errorf("%w (stopped retrying: %v)", err, serr))
		}
		pause = min(2*pause, c.opts.backoffMax)
	}
}

// sleep waits a jittered pause in [d/2, d), or returns ctx's error, or
// returns errRetryBudget when a context without deadline has been retried
// for longer than the retry timeout.
func (c *Client) sleep(ctx context.Context, start time.Time, d time.Duration) error {
	d = d/2 + rand.N(d/2+1)
	if _, ok := ctx.Deadline(); !ok && time.Since(start)+d > c.opts.retryTimeout {
		return errRetryBudget
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var errRetryBudget = errors.New("retry timeout reached")

// wrapAttempts returns err as is after one attempt, else with the count.
func wrapAttempts(n int, err error) error {
	if n == 1 {
		return err
	}
	return &AttemptsError{Attempts: n, Err: err}
}
