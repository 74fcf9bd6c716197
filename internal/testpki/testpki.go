// Package testpki makes certificates for tests: a CA that issues node,
// server and client certificates for the names a test asks for, generated
// in the test with crypto/x509 (ECDSA P-256), so that no key is ever
// committed. Files are written atomically (a temporary file renamed over the
// old one), as a certificate rotation would replace them. Every failure
// fails the test the CA was made for.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority for tests.
type CA struct {
	// Cert is the CA's certificate; CertPEM its PEM encoding.
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	t       testing.TB
}

// Issued is a certificate and its key.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	t       testing.TB
}

// NewCA returns a new self-signed CA named name, valid from an hour ago for
// a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := newCA(name)
	if err != nil {
		t.Fatalf("testpki: new CA: %v", err)
	}
	ca.t = t
	return ca
}

func newCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Pool returns a pool holding only the CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Node issues a node certificate (server and client use) covering names:
// IP addresses become IP SANs, everything else DNS SANs; the first name is
// the common name.
func (ca *CA) Node(names ...string) *Issued {
	ca.t.Helper()
	return ca.must(names, time.Now().Add(-time.Hour), time.Now().Add(12*time.Hour),
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// Server issues a server-only certificate covering names.
func (ca *CA) Server(names ...string) *Issued {
	ca.t.Helper()
	return ca.must(names, time.Now().Add(-time.Hour), time.Now().Add(12*time.Hour), x509.ExtKeyUsageServerAuth)
}

// Client issues a client-only certificate whose common name is name.
func (ca *CA) Client(name string) *Issued {
	ca.t.Helper()
	return ca.must([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(12*time.Hour), x509.ExtKeyUsageClientAuth)
}

// Expired issues a node certificate covering names that expired an hour ago.
func (ca *CA) Expired(names ...string) *Issued {
	ca.t.Helper()
	return ca.must(names, time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour),
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) must(names []string, from, until time.Time, usage ...x509.ExtKeyUsage) *Issued {
	ca.t.Helper()
	is, err := ca.issue(names, from, until, usage...)
	if err != nil {
		ca.t.Fatalf("testpki: issue %v: %v", names, err)
	}
	is.t = ca.t
	return is
}

func (ca *CA) issue(names []string, from, until time.Time, usage ...x509.ExtKeyUsage) (*Issued, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("testpki: a certificate needs a name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    from,
		NotAfter:     until,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}, nil
}

// TLS returns the certificate as a tls.Certificate.
func (is *Issued) TLS() tls.Certificate {
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		panic(err) // the pair was made together
	}
	return c
}

// Write writes the certificate to certPath and the key to keyPath, each
// atomically (the key first).
func (is *Issued) Write(certPath, keyPath string) {
	is.t.Helper()
	WriteFile(is.t, keyPath, is.KeyPEM)
	WriteFile(is.t, certPath, is.CertPEM)
}

// WriteFile replaces path with data atomically (WriteAtomic), failing t on
// error.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := WriteAtomic(path, data); err != nil {
		t.Fatalf("testpki: write %s: %v", path, err)
	}
}

// Bundle concatenates the CAs' certificates (a CA file trusting all of
// them).
func Bundle(cas ...*CA) []byte {
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.CertPEM...)
	}
	return b
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory, renamed over path.
func WriteAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}
