package client

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Option configures a Client (see New).
type Option func(*options)

// options are what New's Options set.
type options struct {
	transport      credentials.TransportCredentials // nil: plaintext
	authorization  string                           // value of the authorization header, or ""
	dialOptions    []grpc.DialOption
	maxMessageSize int
	noForward      bool
	retryUnknown   bool
	backoffBase    time.Duration
	backoffMax     time.Duration
	retryTimeout   time.Duration
}

// Defaults of the retry policy (WithBackoff, WithRetryTimeout).
const (
	DefaultBackoffBase  = 50 * time.Millisecond
	DefaultBackoffMax   = 2 * time.Second
	DefaultRetryTimeout = 30 * time.Second
)

// DefaultMaxMessageSize is the client's default limit on a message it sends
// or receives: 64 MiB, above the server's default --max-message-size
// (16 MiB) plus the header a response may add. grpc-go's own default
// receive limit is 4 MiB, which a large unary Query exceeds.
const DefaultMaxMessageSize = 64 << 20

func defaultOptions() options {
	return options{
		maxMessageSize: DefaultMaxMessageSize,
		backoffBase:    DefaultBackoffBase,
		backoffMax:     DefaultBackoffMax,
		retryTimeout:   DefaultRetryTimeout,
	}
}

// WithTLS connects with TLS using cfg (nil: verify the server against the
// system's roots). Without WithTLS or WithTransportCredentials the client
// speaks plaintext.
func WithTLS(cfg *tls.Config) Option {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return WithTransportCredentials(credentials.NewTLS(cfg))
}

// WithTransportCredentials connects with creds (TLS, ALTS, ...).
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(o *options) { o.transport = creds }
}

// WithBasicAuth sends "authorization: Basic base64(user:password)" with
// every call, for a server started with --users-file. Use it with TLS:
// without it, anyone on the path can read the password.
func WithBasicAuth(user, password string) Option {
	return func(o *options) {
		o.authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
}

// WithBearerToken sends "authorization: Bearer TOKEN" with every call;
// token is the NAME.SECRET that sqlraftd new-token printed.
func WithBearerToken(token string) Option {
	return func(o *options) { o.authorization = "Bearer " + token }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, window
// sizes, ...) to every connection the client opens. They are applied after
// the client's own, so they can override them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// WithMaxMessageSize sets the largest message the client sends or
// receives, in bytes (default DefaultMaxMessageSize).
func WithMaxMessageSize(n int) Option {
	return func(o *options) { o.maxMessageSize = n }
}

// WithNoForward sends the metadata "sqlraft-no-forward: true" with every
// call, so followers answer NOT_LEADER instead of forwarding writes and
// non-NONE reads. The client then sends the call again to the leader the
// answer names, and sends later writes to it directly.
func WithNoForward() Option {
	return func(o *options) { o.noForward = true }
}

// WithRetryUnknownOutcome lets the client repeat writes whose outcome is
// unknown (OUTCOME_UNKNOWN, or UNAVAILABLE after the request may have
// reached a node). Use it only when every write the client sends is
// idempotent: a repeated INSERT may otherwise be applied twice. For single
// calls, pass Idempotent instead.
func WithRetryUnknownOutcome() Option {
	return func(o *options) { o.retryUnknown = true }
}

// WithBackoff sets the pause before the first retry (base) and its upper
// bound (max). The pause doubles after each attempt and is jittered: each
// pause is drawn from [d/2, d).
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoffMax = base, max }
}

// WithRetryTimeout bounds how long the client keeps retrying one call when
// the caller's context has no deadline (default DefaultRetryTimeout). A
// context deadline always bounds retries; this only stops a call made with
// context.Background from retrying forever against a cluster that is down.
func WithRetryTimeout(d time.Duration) Option {
	return func(o *options) { o.retryTimeout = d }
}

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotent bool
	at         string
	noForward  bool
}

// Idempotent marks a write whose repetition is harmless (INSERT OR IGNORE
// of a chosen key, an UPDATE that sets fixed values, ...), so the client
// may repeat it when its outcome is unknown.
func Idempotent() CallOption {
	return func(c *callOptions) { c.idempotent = true }
}

// At sends the call to the node at addr (a client address) and nowhere
// else: for node-local calls (Status, Checksum, Snapshot) or a NONE read on
// a given node. The client does not follow NOT_LEADER answers to another
// node; it still retries at addr what it would retry.
func At(addr string) CallOption {
	return func(c *callOptions) { c.at = addr }
}

// NoForward sends "sqlraft-no-forward: true" with this call (see
// WithNoForward).
func NoForward() CallOption {
	return func(c *callOptions) { c.noForward = true }
}

// headerCredentials sends one authorization header with every call.
type headerCredentials struct{ value string }

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (h headerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": h.value}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. It is
// false so a plaintext test cluster with users can be used; production
// deployments pair credentials with WithTLS.
func (headerCredentials) RequireTransportSecurity() bool { return false }
