package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Key usages a peer's certificate must allow.
var (
	serverUse = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientUse = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

// peerInfo names the other side of a handshake for the refusal log.
type peerInfo struct {
	port string // "client", "raft" (this node's server ports) or "dial"
	addr string // the remote host, or the dialed host
}

// verify checks the peer's chain against the pool as it is now and, when
// host is set, that the leaf covers host. A refusal is logged with its
// reason (refusalLog limits how often per peer).
func (c *Config) verify(cs tls.ConnectionState, pool *caPool, host string, usage []x509.ExtKeyUsage, who peerInfo) error {
	if len(cs.PeerCertificates) == 0 {
		err := errors.New("tls: the peer presented no certificate")
		c.refusals.refuse(who, "no certificate", "", err)
		return err
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool.get(), Intermediates: inter, DNSName: host, KeyUsages: usage,
		CurrentTime: c.opts.Now(),
	})
	if err != nil {
		c.refusals.refuse(who, Reason(err), CertName(leaf), err)
		return fmt.Errorf("tls: %s: %w", Reason(err), err)
	}
	return nil
}

// Reason names why a certificate was refused: "unknown authority",
// "expired", "name mismatch", "wrong key usage" or "invalid certificate".
func Reason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return "unknown authority"
	case errors.As(err, &he):
		return "name mismatch"
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return "expired"
		case x509.IncompatibleUsage:
			return "wrong key usage"
		}
	}
	return "invalid certificate"
}

// CertName is a certificate's name: its first DNS name, else its first IP
// address, else its common name.
func CertName(c *x509.Certificate) string {
	switch {
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return c.IPAddresses[0].String()
	}
	return c.Subject.CommonName
}

func remoteHost(hello *tls.ClientHelloInfo) string {
	if hello.Conn == nil {
		return ""
	}
	addr := hello.Conn.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// RefusalLogInterval is the least time between two logged refusals of the
// same peer (host) on the same port for the same reason.
const RefusalLogInterval = time.Minute

// refusalLog logs refused peers, at most once per RefusalLogInterval per
// peer and port, so a peer retrying in a loop cannot flood the log.
type refusalLog struct {
	logger *slog.Logger
	now    func() time.Time

	mu   sync.Mutex
	last map[refusalKey]time.Time
}

// refusalKey is what the log is limited by: a peer, on a port, for a
// reason (a peer refused for two reasons is logged for both).
type refusalKey struct {
	who    peerInfo
	reason string
}

func newRefusalLog(logger *slog.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{logger: logger, now: now, last: map[refusalKey]time.Time{}}
}

// refuse logs the refusal unless this peer's last one was logged less than
// RefusalLogInterval ago.
func (r *refusalLog) refuse(who peerInfo, reason, name string, err error) {
	if !r.due(refusalKey{who, reason}) {
		return
	}
	msg := "refused a TLS peer"
	if who.port == "dial" {
		msg = "refused a node's server certificate"
	}
	r.logger.Warn(msg, "port", who.port, "peer", who.addr, "reason", reason, "certificate", name, "err", err)
}

func (r *refusalLog) due(who refusalKey) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[who]; ok && now.Sub(t) < RefusalLogInterval {
		return false
	}
	if len(r.last) >= 4096 { // forget peers whose window has passed
		for k, t := range r.last {
			if now.Sub(t) >= RefusalLogInterval {
				delete(r.last, k)
			}
		}
	}
	if len(r.last) < 4096 {
		r.last[who] = now
	}
	return true
}
