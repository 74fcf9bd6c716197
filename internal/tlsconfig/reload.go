package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ReloadInterval is the least time between two looks at a file's metadata:
// a handshake stats the files at most once per interval, and a changed
// file is read again at that handshake.
const ReloadInterval = time.Second

// fileStamp is what tells that a file changed: os.Stat follows symbolic
// links, so a Kubernetes secret whose ..data link was swapped shows the new
// target's identity, size and time.
type fileStamp struct {
	info os.FileInfo
}

func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == nil && o.info == nil
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

// reloading holds a value parsed from one or more files and parses them
// again when one of them changes. A file that cannot be read or parsed is
// logged once (until it changes again) and the last good value is kept.
type reloading[T any] struct {
	what   string // for logs: "node certificate", "client CA", ...
	paths  []string
	parse  func(data [][]byte) (T, error)
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	value   T
	stamps  []fileStamp // of the files as last read (good or bad)
	checked time.Time
}

// newReloading reads the files once; an error here is a start-up error.
func newReloading[T any](what string, paths []string, parse func([][]byte) (T, error), logger *slog.Logger, now func() time.Time) (*reloading[T], error) {
	r := &reloading[T]{what: what, paths: paths, parse: parse, logger: logger, now: now}
	stamps := r.stat()
	v, err := r.read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r.value, r.stamps, r.checked = v, stamps, now()
	return r, nil
}

// get returns the current value, reading the files again first when at
// least ReloadInterval has passed since the last look and they changed.
func (r *reloading[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < ReloadInterval {
		return r.value
	}
	r.checked = now
	stamps := r.stat()
	if sameStamps(stamps, r.stamps) {
		return r.value
	}
	r.stamps = stamps // a bad file is reported once, until it changes again
	v, err := r.read()
	if err != nil {
		r.logger.Error("could not reload "+r.what+"; keeping the previous one", "files", r.paths, "err", err)
		return r.value
	}
	r.value = v
	r.logger.Info("reloaded "+r.what, "files", r.paths)
	return r.value
}

func (r *reloading[T]) stat() []fileStamp {
	out := make([]fileStamp, len(r.paths))
	for i, p := range r.paths {
		if fi, err := os.Stat(p); err == nil {
			out[i] = fileStamp{info: fi}
		}
	}
	return out
}

func (r *reloading[T]) read() (T, error) {
	data := make([][]byte, len(r.paths))
	for i, p := range r.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			var zero T
			return zero, err
		}
		data[i] = b
	}
	return r.parse(data)
}

func sameStamps(a, b []fileStamp) bool {
	for i := range a {
		if !a[i].same(b[i]) {
			return false
		}
	}
	return true
}

// keyPair is a certificate and key file pair.
type keyPair = reloading[*tls.Certificate]

func newKeyPair(what, certFile, keyFile string, logger *slog.Logger, now func() time.Time) (*keyPair, error) {
	return newReloading(what, []string{certFile, keyFile}, func(d [][]byte) (*tls.Certificate, error) {
		c, err := tls.X509KeyPair(d[0], d[1])
		if err != nil {
			return nil, err
		}
		return &c, nil // c.Leaf is parsed by X509KeyPair
	}, logger, now)
}

// caPool is a file of one or more PEM CA certificates.
type caPool = reloading[*x509.CertPool]

func newCAPool(what, file string, logger *slog.Logger, now func() time.Time) (*caPool, error) {
	return newReloading(what, []string{file}, func(d [][]byte) (*x509.CertPool, error) {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(d[0]) {
			return nil, fmt.Errorf("no PEM certificate in the file")
		}
		return p, nil
	}, logger, now)
}
