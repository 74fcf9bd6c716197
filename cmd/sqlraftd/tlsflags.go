package main

import (
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/sqlraft/sqlraft/internal/tlsconfig"
)

// tlsFlags are the TLS flags (internal/tlsconfig does the work).
type tlsFlags struct {
	cert, key, clientCA, clientAuth, minVersion string
	nodeCert, nodeKey, nodeCA                   string
}

func addTLSFlags(f *pflag.FlagSet, t *tlsFlags) {
	f.StringVar(&t.cert, "tls-cert", "", "PEM certificate of the client port (with --tls-key); re-read when it changes")
	f.StringVar(&t.key, "tls-key", "", "PEM key of --tls-cert")
	f.StringVar(&t.clientCA, "tls-client-ca", "", "PEM CA certificates that sign user client certificates")
	f.StringVar(&t.clientAuth, "tls-client-auth", "",
		"client certificates: off, verify-if-given or require (default: verify-if-given with --tls-client-ca, else off)")
	f.StringVar(&t.minVersion, "tls-min-version", "1.3", "least TLS version of the client port: 1.3 or 1.2")
	f.StringVar(&t.nodeCert, "node-cert", "",
		"PEM certificate of this node for mutual TLS between nodes (with --node-key and --node-ca); must cover the hosts of the advertised addresses")
	f.StringVar(&t.nodeKey, "node-key", "", "PEM key of --node-cert")
	f.StringVar(&t.nodeCA, "node-ca", "", "PEM CA certificates that sign node certificates")
}

// options checks the flags and turns them into tlsconfig.Options; errors
// name the flags.
func (t tlsFlags) options() (tlsconfig.Options, error) {
	auth, err := tlsconfig.ParseClientAuth(t.clientAuth)
	if err != nil {
		return tlsconfig.Options{}, err
	}
	minVersion, err := tlsconfig.ParseMinVersion(t.minVersion)
	if err != nil {
		return tlsconfig.Options{}, err
	}
	o := tlsconfig.Options{CertFile: t.cert, KeyFile: t.key, ClientCAFile: t.clientCA, ClientAuth: auth,
		MinVersion: minVersion, NodeCertFile: t.nodeCert, NodeKeyFile: t.nodeKey, NodeCAFile: t.nodeCA}
	return o, o.Validate()
}

// config reads the files the flags name; nil when no TLS flag is set.
func (t tlsFlags) config(logger *slog.Logger) (*tlsconfig.Config, error) {
	o, err := t.options()
	if err != nil {
		return nil, err
	}
	if o.CertFile == "" && o.NodeCertFile == "" {
		return nil, nil
	}
	o.Logger = logger.With("component", "tls")
	return tlsconfig.New(o)
}
