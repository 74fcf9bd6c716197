package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/sqlraft/sqlraft/internal/testdir"
	"github.com/sqlraft/sqlraft/internal/testlog"
	"github.com/sqlraft/sqlraft/internal/testpki"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newConfig(t *testing.T, o Options) *Config {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// k8sSecret lays out files as a Kubernetes secret volume does: the names
// are links through ..data, a link to a timestamped directory that a
// rotation replaces by swapping ..data.
type k8sSecret struct {
	dir string
	gen int
}

func (k *k8sSecret) write(t *testing.T, files map[string][]byte) {
	t.Helper()
	if runtime.GOOS == "windows" {
		// Links there need a privilege, and wine makes ones that do not
		// resolve; the other tests replace files by rename.
		t.Skip("symbolic links: Kubernetes' secret swap is not a Windows thing")
	}
	k.gen++
	gen := filepath.Join(k.dir, "..gen"+string(rune('a'+k.gen)))
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(gen, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// A certificate is re-read when the ..data link is swapped, at most once
// per ReloadInterval, and a bad new file is logged and the old one kept.
func TestReloadFollowsSymlinkSwapAndKeepsOldOnError(t *testing.T) {
	ca := testpki.NewCA(t, "node CA")
	first := ca.Node("n1", "127.0.0.1")
	second := ca.Node("n1", "127.0.0.1")
	sec := &k8sSecret{dir: testdir.New(t, "tlsconfig")}
	sec.write(t, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM, "ca.crt": ca.CertPEM})
	clk := &clock{t: time.Now()}
	logs := &testlog.Buffer{}
	c := newConfig(t, Options{NodeCertFile: filepath.Join(sec.dir, "tls.crt"), NodeKeyFile: filepath.Join(sec.dir, "tls.key"),
		NodeCAFile: filepath.Join(sec.dir, "ca.crt"), Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: clk.now})
	serial := func() string { return c.nodeCert.get().Leaf.SerialNumber.String() }
	if serial() != first.Cert.SerialNumber.String() {
		t.Fatal("not the first certificate")
	}
	sec.write(t, map[string][]byte{"tls.crt": second.CertPEM, "tls.key": second.KeyPEM, "ca.crt": ca.CertPEM})
	clk.add(ReloadInterval / 2)
	if serial() != first.Cert.SerialNumber.String() {
		t.Fatal("re-read before the reload interval passed")
	}
	clk.add(ReloadInterval)
	if serial() != second.Cert.SerialNumber.String() {
		t.Fatal("the swapped certificate was not loaded")
	}
	// A key that does not match the certificate: logged, old pair kept.
	third := ca.Node("n1")
	sec.write(t, map[string][]byte{"tls.crt": third.CertPEM, "tls.key": first.KeyPEM, "ca.crt": []byte("garbage")})
	clk.add(ReloadInterval)
	if serial() != second.Cert.SerialNumber.String() {
		t.Fatal("a bad pair replaced the good one")
	}
	if c.nodeCA.get() == nil {
		t.Fatal("a bad CA file replaced the pool")
	}
	if out := logs.String(); !strings.Contains(out, "could not reload node certificate") || !strings.Contains(out, "could not reload node CA") {
		t.Fatalf("bad files not logged:\n%s", out)
	}
	sec.write(t, map[string][]byte{"tls.crt": third.CertPEM, "tls.key": third.KeyPEM, "ca.crt": ca.CertPEM})
	clk.add(ReloadInterval)
	if serial() != third.Cert.SerialNumber.String() {
		t.Fatal("the fixed pair was not loaded")
	}
}

// handshake runs a TLS handshake over a pipe, with one byte sent from the
// client to the server so that the server's verdict reaches the client too
// (in TLS 1.3 the client finishes before the server checks its
// certificate). It returns both sides' errors and the server's state.
func handshake(server, client *tls.Config) (serverErr, clientErr error, state tls.ConnectionState) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err, err, state
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		raw, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer raw.Close()
		s := tls.Server(raw, server)
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		err = s.Handshake()
		if err == nil {
			state = s.ConnectionState()
			if _, err = s.Read(make([]byte, 1)); err == nil {
				_, err = s.Write([]byte{1})
			}
		}
		done <- err
	}()
	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		return err, err, state
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	cl := tls.Client(raw, client)
	clientErr = cl.Handshake()
	if clientErr == nil {
		if _, clientErr = cl.Write([]byte{1}); clientErr == nil {
			_, clientErr = cl.Read(make([]byte, 1))
		}
	}
	serverErr = <-done
	return serverErr, clientErr, state
}

type fixture struct {
	ca, foreign, users *testpki.CA
	c                  *Config
	logs               *testlog.Buffer
}

func newFixture(t *testing.T, mode ClientAuth) *fixture {
	f := &fixture{ca: testpki.NewCA(t, "node CA"), foreign: testpki.NewCA(t, "foreign"),
		users: testpki.NewCA(t, "users"), logs: &testlog.Buffer{}}
	dir := testdir.New(t, "tlsconfig")
	p := func(n string) string { return filepath.Join(dir, n) }
	node := f.ca.Node("n1", "127.0.0.1")
	srv := f.users.Server("localhost", "127.0.0.1")
	node.Write(p("node.crt"), p("node.key"))
	srv.Write(p("tls.crt"), p("tls.key"))
	testpki.WriteFile(t, p("ca.crt"), f.ca.CertPEM)
	testpki.WriteFile(t, p("users.crt"), f.users.CertPEM)
	f.c = newConfig(t, Options{CertFile: p("tls.crt"), KeyFile: p("tls.key"), ClientCAFile: p("users.crt"), ClientAuth: mode,
		NodeCertFile: p("node.crt"), NodeKeyFile: p("node.key"), NodeCAFile: p("ca.crt"),
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	return f
}

func clientWith(ca *testpki.CA, cert *testpki.Issued, protos ...string) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: protos, MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS()}
	}
	return c
}

// Each port's handshake accepts exactly the certificates it should, and
// every refusal is logged with its reason.
func TestHandshakes(t *testing.T) {
	f := newFixture(t, ClientAuthRequire)
	nodeCert := f.ca.Node("n2", "127.0.0.1")
	foreignNode := f.foreign.Node("n2", "127.0.0.1")
	expired := f.ca.Expired("n2", "127.0.0.1")
	user := f.users.Client("alice")
	cases := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		reason string // "" when accepted
		proto  string
	}{
		{"user with a client cert", f.c.ClientServerConfig(), clientWith(f.users, user, "h2"), "", "h2"},
		{"user without a cert (require)", f.c.ClientServerConfig(), clientWith(f.users, nil, "h2"), "no certificate", ""},
		{"user with a node cert", f.c.ClientServerConfig(), clientWith(f.users, nodeCert, "h2"), "unknown authority", ""},
		{"node ALPN with a node cert", f.c.ClientServerConfig(), clientWith(f.ca, nodeCert, ALPNNode, "h2"), "", ALPNNode},
		{"node ALPN with a user cert", f.c.ClientServerConfig(), clientWith(f.ca, user, ALPNNode, "h2"), "unknown authority", ""},
		{"raft port, node cert", f.c.RaftServerConfig(), clientWith(f.ca, nodeCert, ALPNNode, "h2"), "", ALPNNode},
		{"raft port, foreign CA", f.c.RaftServerConfig(), clientWith(f.ca, foreignNode, ALPNNode), "unknown authority", ""},
		{"raft port, no cert", f.c.RaftServerConfig(), clientWith(f.ca, nil, ALPNNode), "no certificate", ""},
		{"raft port, expired", f.c.RaftServerConfig(), clientWith(f.ca, expired, ALPNNode), "expired", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr, st := handshake(tc.server, tc.client)
			if tc.reason == "" {
				if serr != nil || cerr != nil {
					t.Fatalf("refused: server %v, client %v", serr, cerr)
				}
				if st.NegotiatedProtocol != tc.proto {
					t.Fatalf("protocol %q, want %q", st.NegotiatedProtocol, tc.proto)
				}
				return
			}
			if serr == nil || cerr == nil {
				t.Fatalf("accepted: server %v, client %v", serr, cerr)
			}
			if out := f.logs.String(); !strings.Contains(out, "reason=\""+tc.reason+"\"") && !strings.Contains(out, "reason="+tc.reason+" ") {
				t.Fatalf("no refusal logged with reason %q:\n%s", tc.reason, f.logs.String())
			}
		})
	}
}

// The node dial verifies the server against the node CA and the dialed
// host.
func TestNodeDial(t *testing.T) {
	f := newFixture(t, ClientAuthDefault)
	other := f.ca.Node("elsewhere.example")
	server := &tls.Config{Certificates: []tls.Certificate{other.TLS()}, ClientAuth: tls.RequireAnyClientCert}
	dial := f.c.NodeDialConfig("127.0.0.1")
	if _, cerr, _ := handshake(server, dial); cerr == nil || !strings.Contains(cerr.Error(), "name mismatch") {
		t.Fatalf("a server certificate for another name: %v", cerr)
	}
	foreign := f.foreign.Node("127.0.0.1")
	server.Certificates = []tls.Certificate{foreign.TLS()}
	if _, cerr, _ := handshake(server, dial); cerr == nil || !strings.Contains(cerr.Error(), "unknown authority") {
		t.Fatalf("a foreign server certificate: %v", cerr)
	}
	good := f.ca.Node("127.0.0.1")
	server.Certificates = []tls.Certificate{good.TLS()}
	if serr, cerr, st := handshake(server, dial); serr != nil || cerr != nil || len(st.PeerCertificates) == 0 {
		t.Fatalf("a good server: %v %v", serr, cerr)
	}
	if !strings.Contains(f.logs.String(), "refused a node's server certificate") {
		t.Fatalf("dial refusal not logged:\n%s", f.logs.String())
	}
}

// A discovery probe accepts a node certificate that does not name the IP
// it dialed, refuses one from another CA, and CheckClaims then holds the
// answer to the names the certificate covers.
func TestProbeDial(t *testing.T) {
	f := newFixture(t, ClientAuthDefault)
	pod := f.ca.Node("sqlraft-1.peers")
	server := &tls.Config{Certificates: []tls.Certificate{pod.TLS()}, ClientAuth: tls.RequireAnyClientCert}
	probe := f.c.nodeDialConfig("127.0.0.1", "")
	if _, cerr, _ := handshake(server, probe); cerr != nil {
		t.Fatalf("a node certificate for the pod's name, dialed by IP: %v", cerr)
	}
	// What grpc.Peer gives the prober after the call.
	p := &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{pod.Cert}}}}
	if err := CheckClaims(p, "sqlraft-1.peers:6002", "", "sqlraft-1.peers:6001"); err != nil {
		t.Fatalf("claims the certificate covers: %v", err)
	}
	if err := CheckClaims(p, "sqlraft-1.peers:6002", "sqlraft-2.peers:6001"); err == nil {
		t.Fatal("a claim the certificate does not cover passed")
	}
	if err := CheckClaims(&peer.Peer{}, "x:1"); err == nil {
		t.Fatal("a plaintext peer passed")
	}
	server.Certificates = []tls.Certificate{f.foreign.Node("sqlraft-1.peers").TLS()}
	if _, cerr, _ := handshake(server, probe); cerr == nil || !strings.Contains(cerr.Error(), "unknown authority") {
		t.Fatalf("a foreign node certificate on a probe: %v", cerr)
	}
}

// verify-if-given accepts a client without a certificate; a TLS 1.2 client
// is refused by default and accepted with MinVersion 1.2.
func TestClientAuthAndMinVersion(t *testing.T) {
	f := newFixture(t, ClientAuthDefault)
	if serr, cerr, _ := handshake(f.c.ClientServerConfig(), clientWith(f.users, nil, "h2")); serr != nil || cerr != nil {
		t.Fatalf("verify-if-given refused a client without a certificate: %v %v", serr, cerr)
	}
	old := clientWith(f.users, nil, "h2")
	old.MaxVersion = tls.VersionTLS12
	if serr, _, _ := handshake(f.c.ClientServerConfig(), old); serr == nil {
		t.Fatal("a TLS 1.2 client was accepted with the default minimum")
	}
	f.c.opts.MinVersion = tls.VersionTLS12
	if serr, cerr, _ := handshake(f.c.ClientServerConfig(), old); serr != nil || cerr != nil {
		t.Fatalf("a TLS 1.2 client with --tls-min-version 1.2: %v %v", serr, cerr)
	}
}

// Refusals of one peer for one reason are logged once per interval.
func TestRefusalLogIsRateLimited(t *testing.T) {
	clk := &clock{t: time.Now()}
	logs := &testlog.Buffer{}
	r := newRefusalLog(slog.New(slog.NewTextHandler(logs, nil)), clk.now)
	who := peerInfo{port: "raft", addr: "10.0.0.1"}
	for i := 0; i < 5; i++ {
		r.refuse(who, "unknown authority", "x", nil)
	}
	r.refuse(who, "no certificate", "", nil)
	clk.add(RefusalLogInterval)
	r.refuse(who, "unknown authority", "x", nil)
	if n := strings.Count(logs.String(), "refused"); n != 3 {
		t.Fatalf("%d refusals logged, want 3:\n%s", n, logs.String())
	}
}

func TestValidateNamesFlags(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{CertFile: "a"}, "--tls-cert and --tls-key go together: --tls-key missing"},
		{Options{KeyFile: "a"}, "--tls-cert missing"},
		{Options{NodeCertFile: "a"}, "--node-ca and --node-key missing"},
		{Options{NodeCertFile: "a", NodeKeyFile: "b"}, "--node-ca missing"},
		{Options{CertFile: "a", KeyFile: "b", ClientAuth: ClientAuthRequire}, "--tls-client-auth require needs --tls-client-ca"},
		{Options{ClientCAFile: "a"}, "--tls-client-ca needs TLS on the client port"},
		{Options{ClientAuth: "maybe"}, `--tls-client-auth: "maybe" is not one of`},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("no TLS: %v", err)
	}
}
