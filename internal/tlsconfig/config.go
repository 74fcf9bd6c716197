package tlsconfig

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ALPNNode is the application protocol node dialers offer besides h2. The
// client port answers a hello that offers it with the node certificate and
// requires a client certificate verified against the node CA; a connection
// that negotiated it is a node's (NodePeer).
const ALPNNode = "sqlraft-node"

// ClientAuth is how the client port treats user client certificates.
type ClientAuth string

// Client certificate modes (--tls-client-auth).
const (
	// ClientAuthDefault is VerifyIfGiven with a client CA, else Off.
	ClientAuthDefault ClientAuth = ""
	// ClientAuthOff asks for no client certificate.
	ClientAuthOff ClientAuth = "off"
	// ClientAuthVerifyIfGiven verifies a certificate the client offers
	// against the client CA and accepts clients that offer none.
	ClientAuthVerifyIfGiven ClientAuth = "verify-if-given"
	// ClientAuthRequire refuses clients without a certificate that verifies
	// against the client CA.
	ClientAuthRequire ClientAuth = "require"
)

// ParseClientAuth parses a --tls-client-auth value.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch m := ClientAuth(strings.ToLower(s)); m {
	case ClientAuthDefault, ClientAuthOff, ClientAuthVerifyIfGiven, ClientAuthRequire:
		return m, nil
	}
	return "", fmt.Errorf("--tls-client-auth: %q is not one of off, verify-if-given, require", s)
}

// ParseMinVersion parses a --tls-min-version value: "1.3" (or "") or "1.2".
func ParseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("--tls-min-version: %q is not 1.3 or 1.2", s)
}

// Options name the files a node's TLS is built from. Every file is read at
// New and again whenever it changes (see ReloadInterval).
type Options struct {
	// CertFile and KeyFile are the client port's certificate (--tls-cert,
	// --tls-key). Without them, and with node TLS on, the client port
	// serves the node certificate to clients too.
	CertFile, KeyFile string
	// ClientCAFile verifies user client certificates (--tls-client-ca).
	ClientCAFile string
	// ClientAuth is the client certificate mode (--tls-client-auth).
	ClientAuth ClientAuth
	// MinVersion is the client port's least TLS version (--tls-min-version;
	// zero: TLS 1.3). Node connections always use TLS 1.3.
	MinVersion uint16
	// NodeCertFile, NodeKeyFile and NodeCAFile turn node mTLS on
	// (--node-cert, --node-key, --node-ca): all three or none.
	NodeCertFile, NodeKeyFile, NodeCAFile string
	// Logger receives reloads and refusals (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock of the reload interval and the refusal log
	// (default time.Now).
	Now func() time.Time
}

// Config is a node's TLS: the current certificates and CA pools, and the
// tls.Config and gRPC options built on them. The zero of each half (no
// client certificate, no node files) means plaintext for that half.
type Config struct {
	opts       Options
	clientCert *keyPair // nil: the node certificate, or no client TLS
	clientCA   *caPool  // nil: no client certificates verified
	nodeCert   *keyPair // nil: no node mTLS
	nodeCA     *caPool
	refusals   *refusalLog
}

// Validate checks that flags that go together were given together, and
// names them.
func (o Options) Validate() error {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: %s", missing(map[string]string{
			"--tls-cert": o.CertFile, "--tls-key": o.KeyFile}))
	}
	if n := countSet(o.NodeCertFile, o.NodeKeyFile, o.NodeCAFile); n != 0 && n != 3 {
		return fmt.Errorf("--node-cert, --node-key and --node-ca go together: %s", missing(map[string]string{
			"--node-cert": o.NodeCertFile, "--node-key": o.NodeKeyFile, "--node-ca": o.NodeCAFile}))
	}
	if _, err := ParseClientAuth(string(o.ClientAuth)); err != nil {
		return err
	}
	if (o.ClientAuth == ClientAuthVerifyIfGiven || o.ClientAuth == ClientAuthRequire) && o.ClientCAFile == "" {
		return fmt.Errorf("--tls-client-auth %s needs --tls-client-ca", o.ClientAuth)
	}
	if o.ClientCAFile != "" && o.CertFile == "" && o.NodeCertFile == "" {
		return fmt.Errorf("--tls-client-ca needs TLS on the client port: --tls-cert and --tls-key, or --node-cert, --node-key and --node-ca")
	}
	if o.MinVersion != 0 && o.MinVersion != tls.VersionTLS12 && o.MinVersion != tls.VersionTLS13 {
		return fmt.Errorf("--tls-min-version must be 1.2 or 1.3")
	}
	return nil
}

func countSet(v ...string) int {
	n := 0
	for _, s := range v {
		if s != "" {
			n++
		}
	}
	return n
}

func missing(flags map[string]string) string {
	var out []string
	for name, v := range flags {
		if v == "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " and ") + " missing"
}

// New checks o, reads every file it names and returns the Config. A file
// that cannot be read or parsed now is an error; later, a bad new version
// of it is logged and the old one kept.
func New(o Options) (*Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS13
	}
	if o.ClientAuth == ClientAuthDefault {
		o.ClientAuth = ClientAuthOff
		if o.ClientCAFile != "" {
			o.ClientAuth = ClientAuthVerifyIfGiven
		}
	}
	c := &Config{opts: o, refusals: newRefusalLog(o.Logger, o.Now)}
	var err error
	if o.CertFile != "" {
		if c.clientCert, err = newKeyPair("client port certificate (--tls-cert, --tls-key)", o.CertFile, o.KeyFile, o.Logger, o.Now); err != nil {
			return nil, err
		}
	}
	if o.ClientCAFile != "" && o.ClientAuth != ClientAuthOff {
		if c.clientCA, err = newCAPool("client CA (--tls-client-ca)", o.ClientCAFile, o.Logger, o.Now); err != nil {
			return nil, err
		}
	}
	if o.NodeCertFile != "" {
		if c.nodeCert, err = newKeyPair("node certificate (--node-cert, --node-key)", o.NodeCertFile, o.NodeKeyFile, o.Logger, o.Now); err != nil {
			return nil, err
		}
		if c.nodeCA, err = newCAPool("node CA (--node-ca)", o.NodeCAFile, o.Logger, o.Now); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ClientTLS reports whether the client port speaks TLS (a client
// certificate, or node TLS).
func (c *Config) ClientTLS() bool { return c != nil && (c.clientCert != nil || c.nodeCert != nil) }

// NodeTLS reports whether node mTLS is on.
func (c *Config) NodeTLS() bool { return c != nil && c.nodeCert != nil }

// ClientCredentials are the client port's server credentials, or nil when
// it is plaintext.
func (c *Config) ClientCredentials() credentials.TransportCredentials {
	if !c.ClientTLS() {
		return nil
	}
	return credentials.NewTLS(c.ClientServerConfig())
}

// RaftServerOptions are the Raft port's server options: node mTLS and the
// name check of transport messages (names.go). Nil without node TLS.
func (c *Config) RaftServerOptions() []grpc.ServerOption {
	if !c.NodeTLS() {
		return nil
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(c.RaftServerConfig())),
		grpc.ChainUnaryInterceptor(c.raftNamesUnary),
		grpc.ChainStreamInterceptor(c.raftNamesStream),
	}
}

// NodeDialOptions are the options of every dial to another node (its Raft
// port or its client port): with node TLS the node certificate, the server
// verified against the node CA and the dialed host. With only client TLS,
// other nodes' client ports are dialed with TLS verified against the
// system's roots. Nil when the node speaks no TLS.
func (c *Config) NodeDialOptions() []grpc.DialOption {
	switch {
	case c.NodeTLS():
		return []grpc.DialOption{grpc.WithTransportCredentials(nodeDialCreds{c: c})}
	case c.ClientTLS():
		return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{MinVersion: c.opts.MinVersion}))}
	}
	return nil
}

// ProbeDialOptions are the dial options of discovery probes. A probe dials
// an address from DNS records, an IP that no certificate names (a pod's IP
// changes with every start), so the server must hold a node certificate
// but its name is checked afterwards, against the addresses it says it has
// (CheckClaims), not against the dialed IP. Everything the node does with
// a probe's answer then dials those addresses, fully verified.
func (c *Config) ProbeDialOptions() []grpc.DialOption {
	if !c.NodeTLS() {
		return c.NodeDialOptions()
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(nodeDialCreds{c: c, anyName: true})}
}

// ClientServerConfig is the client port's tls.Config: a hello offering
// ALPNNode (with node TLS on) gets the node configuration, everyone else
// the client certificate (or the node certificate when there is none) and
// the client certificate mode.
func (c *Config) ClientServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: c.opts.MinVersion,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if c.nodeCert != nil && slices.Contains(hello.SupportedProtos, ALPNNode) {
				return c.nodeServer(hello, "client"), nil
			}
			return c.userServer(hello), nil
		},
	}
}

// RaftServerConfig is the Raft port's tls.Config: the node certificate, and
// a client certificate verified against the node CA required.
func (c *Config) RaftServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return c.nodeServer(hello, "raft"), nil
		},
	}
}

// NodeDialConfig is the tls.Config of a dial to another node at host: the
// node certificate, ALPNNode offered, and the server verified against the
// current node CA and host. (gRPC's own credentials cannot be given a
// closure per dial, and the connection state carries no server name for an
// IP address: NodeDialOptions builds this config for each handshake.)
func (c *Config) NodeDialConfig(host string) *tls.Config {
	return c.nodeDialConfig(host, host)
}

// nodeDialConfig sends sni and verifies the server's name against
// verifyHost ("" checks the chain only; see ProbeDialOptions).
func (c *Config) nodeDialConfig(sni, verifyHost string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: sni,
		NextProtos: []string{ALPNNode, "h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.nodeCert.get(), nil
		},
		// The chain and the name are verified in VerifyConnection, against
		// the pool as it is now (it reloads); Go's own check would use a
		// pool fixed when this config was built.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs, c.nodeCA, verifyHost, serverUse, peerInfo{port: "dial", addr: sni})
		},
	}
}

// nodeDialCreds are the transport credentials of node dials: each
// handshake gets a NodeDialConfig for the host it dials (with anyName, one
// that checks the chain only: ProbeDialOptions).
type nodeDialCreds struct {
	c       *Config
	anyName bool
}

func (d nodeDialCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		host = authority
	}
	verifyHost := host
	if d.anyName {
		verifyHost = ""
	}
	return credentials.NewTLS(d.c.nodeDialConfig(host, verifyHost)).ClientHandshake(ctx, authority, conn)
}

func (d nodeDialCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconfig: node dial credentials cannot serve")
}

func (d nodeDialCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}

func (d nodeDialCreds) Clone() credentials.TransportCredentials { return d }

// OverrideServerName is part of the (deprecated) interface; the dialed
// host is what is verified.
func (d nodeDialCreds) OverrideServerName(string) error { return nil }

// nodeServer is the server side of a node connection, on either port.
func (c *Config) nodeServer(hello *tls.ClientHelloInfo, port string) *tls.Config {
	who := peerInfo{port: port, addr: remoteHost(hello)}
	cert := c.nodeCert.get()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{ALPNNode},
		// Presence and chain are checked in VerifyConnection, so that a
		// refusal is logged with its reason.
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs, c.nodeCA, "", clientUse, who)
		},
	}
}

// userServer is the server side of a user's connection to the client port.
func (c *Config) userServer(hello *tls.ClientHelloInfo) *tls.Config {
	kp := c.clientCert
	if kp == nil {
		kp = c.nodeCert
	}
	cfg := &tls.Config{
		MinVersion:   c.opts.MinVersion,
		Certificates: []tls.Certificate{*kp.get()},
		NextProtos:   []string{"h2"},
	}
	if c.clientCA == nil {
		return cfg
	}
	who := peerInfo{port: "client", addr: remoteHost(hello)}
	cfg.ClientAuth = tls.RequestClientCert
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 && c.opts.ClientAuth == ClientAuthVerifyIfGiven {
			return nil
		}
		return c.verify(cs, c.clientCA, "", clientUse, who)
	}
	return cfg
}
