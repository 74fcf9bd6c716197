package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/raftnode"
	"github.com/sqlraft/sqlraft/server/embed"
)

// Half-given TLS flag sets stop the node at start with an error naming the
// flags; complete ones build the node's TLS.
func TestTLSFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together: --tls-key missing"},
		{[]string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key go together: --tls-cert missing"},
		{[]string{"--node-cert", "c.pem"}, "--node-cert, --node-key and --node-ca go together: --node-ca and --node-key missing"},
		{[]string{"--node-cert", "c.pem", "--node-key", "k.pem"}, "--node-ca missing"},
		{[]string{"--node-ca", "ca.pem"}, "--node-cert and --node-key missing"},
		{[]string{"--tls-cert", "c", "--tls-key", "k", "--tls-client-auth", "require"}, "--tls-client-auth require needs --tls-client-ca"},
		{[]string{"--tls-cert", "c", "--tls-key", "k", "--tls-client-auth", "sometimes"}, `--tls-client-auth: "sometimes"`},
		{[]string{"--tls-min-version", "1.1"}, `--tls-min-version: "1.1" is not 1.3 or 1.2`},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs TLS on the client port"},
		{[]string{"--tls-cert", "missing.pem", "--tls-key", "missing.key"}, "client port certificate (--tls-cert, --tls-key): open missing.pem"},
	} {
		err := parseAndBuild(t, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	ca := testpki.NewCA(t, "ca")
	ca.Node("n1", "127.0.0.1").Write(p("node.crt"), p("node.key"))
	testpki.WriteFile(t, p("ca.crt"), ca.CertPEM)
	ecfg, err := build(t, []string{"--node-cert", p("node.crt"), "--node-key", p("node.key"), "--node-ca", p("ca.crt"),
		"--health-addr", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !ecfg.TLS.NodeTLS() || !ecfg.TLS.ClientTLS() || ecfg.HealthAddr != "127.0.0.1:0" {
		t.Fatalf("node TLS %v, client TLS %v, health %q", ecfg.TLS.NodeTLS(), ecfg.TLS.ClientTLS(), ecfg.HealthAddr)
	}
	if ecfg, err = build(t, nil); err != nil || ecfg.TLS != nil {
		t.Fatalf("no TLS flags: %v %v", ecfg.TLS, err)
	}
}

func parseAndBuild(t *testing.T, args []string) error {
	_, err := build(t, args)
	return err
}

// build parses args with sqlraftd's flags (as the daemon does) and builds
// the embed configuration from them.
func build(t *testing.T, args []string) (embed.Config, error) {
	var c config
	f := rootCommand().Flags()
	if err := f.Parse(append(args, "--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0")); err != nil {
		return embed.Config{}, err
	}
	c.dataDir, _ = f.GetString("data-dir")
	c.grpcAddr, _ = f.GetString("grpc-addr")
	c.raftAddr, _ = f.GetString("raft-addr")
	c.healthAddr, _ = f.GetString("health-addr")
	c.readConsistency, c.logLevel = "linearizable", "info"
	c.raftHeartbeatTimeout, c.raftElectionTimeout, c.raftLeaderLeaseTimeout = raftnode.DefaultHeartbeatTimeout,
		raftnode.DefaultElectionTimeout, raftnode.DefaultLeaderLeaseTimeout
	for name, dst := range map[string]*string{"tls-cert": &c.tls.cert, "tls-key": &c.tls.key, "tls-client-ca": &c.tls.clientCA,
		"tls-client-auth": &c.tls.clientAuth, "tls-min-version": &c.tls.minVersion, "node-cert": &c.tls.nodeCert,
		"node-key": &c.tls.nodeKey, "node-ca": &c.tls.nodeCA} {
		*dst, _ = f.GetString(name)
	}
	return c.embedConfig()
}
