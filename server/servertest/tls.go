package servertest

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/internal/tlsconfig"
)

// TLSOptions start a cluster with client TLS and node mutual TLS, from
// certificates made for the test (internal/testpki; nothing is committed).
type TLSOptions struct {
	// CA signs the node certificates and the client ports' certificates
	// (nil: a new CA).
	CA *testpki.CA
	// ClientCA, when set, is every node's --tls-client-ca, with
	// ClientAuth's mode; the test's clients then present a certificate it
	// signed (common name "test-client").
	ClientCA   *testpki.CA
	ClientAuth tlsconfig.ClientAuth
	// Logger, when set, receives the TLS logs (reloads, refusals) of every
	// node instead of the node's logger.
	Logger *slog.Logger
}

// TLSFiles are the certificate files of one node, in the layout sqlraftd's
// flags take. Rewriting them (testpki.WriteFile) rotates them.
type TLSFiles struct {
	Cert, Key, ClientCA       string // --tls-cert, --tls-key, --tls-client-ca
	NodeCert, NodeKey, NodeCA string // --node-cert, --node-key, --node-ca
	clientAuth                tlsconfig.ClientAuth
	ca                        *testpki.CA
}

// WriteTLSFiles issues node id a node certificate (names: id and
// 127.0.0.1) and a client port certificate (localhost and 127.0.0.1) from
// the cluster's CA and writes them, with the CA files, under dir.
func (c *Cluster) WriteTLSFiles(dir, id string) TLSFiles {
	t, o := c.T, c.opts.TLS
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	f := TLSFiles{Cert: p("tls.crt"), Key: p("tls.key"), NodeCert: p("node.crt"), NodeKey: p("node.key"),
		NodeCA: p("node-ca.crt"), clientAuth: o.ClientAuth, ca: o.CA}
	o.CA.Node(id, "127.0.0.1").Write(f.NodeCert, f.NodeKey)
	o.CA.Server("localhost", "127.0.0.1").Write(f.Cert, f.Key)
	testpki.WriteFile(t, f.NodeCA, o.CA.CertPEM)
	if o.ClientCA != nil {
		f.ClientCA = p("client-ca.crt")
		testpki.WriteFile(t, f.ClientCA, o.ClientCA.CertPEM)
	}
	return f
}

// Config reads the files into a node's TLS configuration.
func (f TLSFiles) Config(t testing.TB, logger *slog.Logger) *tlsconfig.Config {
	t.Helper()
	cfg, err := tlsconfig.New(tlsconfig.Options{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.ClientCA,
		ClientAuth: f.clientAuth, NodeCertFile: f.NodeCert, NodeKeyFile: f.NodeKey, NodeCAFile: f.NodeCA, Logger: logger})
	if err != nil {
		t.Fatalf("node TLS: %v", err)
	}
	return cfg
}

// prepareTLS fills in the TLS options' defaults and writes every node's
// files.
func (c *Cluster) prepareTLS() {
	o := c.opts.TLS
	if o == nil {
		return
	}
	if o.CA == nil {
		o.CA = testpki.NewCA(c.T, "sqlraft test node CA")
	}
	if o.ClientCA != nil {
		c.clientCert = o.ClientCA.Client("test-client")
	}
	for _, n := range c.Nodes {
		n.TLS = c.WriteTLSFiles(filepath.Join(filepath.Dir(n.Dir), n.ID+"-tls"), n.ID)
	}
}

// ClientTLS is the tls.Config of the test's clients: the cluster's CA as
// roots, and the test client certificate when the cluster has a client CA.
// Nil for a plaintext cluster.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.opts.TLS == nil {
		return nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.opts.TLS.CA.Cert)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
	if c.clientCert != nil {
		cfg.Certificates = []tls.Certificate{c.clientCert.TLS()}
	}
	return cfg
}

// CA is the cluster's CA (nil for a plaintext cluster).
func (c *Cluster) CA() *testpki.CA {
	if c.opts.TLS == nil {
		return nil
	}
	return c.opts.TLS.CA
}

// clientCredentials are the transport credentials of the test's clients.
func (c *Cluster) clientCredentials() grpc.DialOption {
	if cfg := c.ClientTLS(); cfg != nil {
		return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
	}
	return grpc.WithTransportCredentials(insecureCreds())
}
