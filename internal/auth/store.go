package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ErrInvalidCredentials is every authentication failure: a wrong secret,
// an unknown name and a user without a password look the same.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ThrottledError refuses a peer that failed too often; it may try again
// after RetryAfter.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed authentications from this address; retry in %v",
		e.RetryAfter.Round(time.Millisecond))
}

// Identity is who a caller is and what it may do.
type Identity struct {
	// Name is the user or token name (Anonymous for a caller without
	// credentials).
	Name string
	// Permissions are the rights the users file grants Name.
	Permissions Permission
}

// Options tune a Store. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// CacheSize bounds the verification cache (default 4096 entries) and
	// CacheTTL is how long a verified secret is remembered (default 5 min).
	CacheSize int
	CacheTTL  time.Duration
	// FailureBurst failures in a row are allowed per peer address (default
	// 10), and one more each FailureEvery (default 5 s).
	FailureBurst int
	FailureEvery time.Duration
	// LogWindow: at most one log line per peer per window (default 1 min).
	LogWindow time.Duration
	// ReloadCheck is the least time between two looks at the file
	// (default 1 s).
	ReloadCheck time.Duration
	// Verifiers bounds concurrent hash verifications (default GOMAXPROCS,
	// at least 2): each argon2id verification holds its memory cost.
	Verifiers int
	// Now is the clock of the cache's expiry (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.CacheSize = cmpOr(o.CacheSize, 4096)
	o.CacheTTL = cmpOr(o.CacheTTL, 5*time.Minute)
	o.FailureBurst = cmpOr(o.FailureBurst, 10)
	o.FailureEvery = cmpOr(o.FailureEvery, 5*time.Second)
	o.LogWindow = cmpOr(o.LogWindow, time.Minute)
	o.ReloadCheck = cmpOr(o.ReloadCheck, time.Second)
	o.Verifiers = cmpOr(o.Verifiers, max(2, runtime.GOMAXPROCS(0)))
	if o.Now == nil {
		o.Now = time.Now
	}
}

func cmpOr[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Store is a users file, kept current: it authenticates callers and says
// what they may do. It is safe for concurrent use and owns no goroutine.
type Store struct {
	path   string
	opts   Options
	logger *slog.Logger

	current atomic.Pointer[users]
	cache   *lru.Cache[cacheKey, cacheEntry]
	verify  chan struct{} // semaphore of concurrent verifications
	limit   *throttle

	reloadMu  sync.Mutex // held by the one caller looking at the file
	nextCheck atomic.Int64
	loaded    os.FileInfo // the file current was read from
	rejected  os.FileInfo // the last file refused (logged once)
	statErr   string      // the last error looking at the file (logged once)
}

// cacheKey identifies a verified secret without keeping it: the name, and
// the SHA-256 of the secret.
type cacheKey struct {
	name   string
	secret [sha256.Size]byte
}

type cacheEntry struct {
	from    *users // the file it was verified against
	expires time.Time
}

// Open reads and checks the users file at path. Later calls notice when it
// changes and read it again.
func Open(path string, opts Options) (*Store, error) {
	opts.defaults()
	s := &Store{path: path, opts: opts, logger: opts.Logger.With("users_file", path),
		verify: make(chan struct{}, opts.Verifiers)}
	s.cache, _ = lru.New[cacheKey, cacheEntry](opts.CacheSize)
	s.limit = newThrottle(opts.FailureEvery, opts.FailureBurst, opts.LogWindow, s.logger)
	fi, u, err := readUsers(path)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	s.current.Store(u)
	s.loaded = fi
	s.nextCheck.Store(time.Now().Add(opts.ReloadCheck).UnixNano())
	return s, nil
}

func readUsers(path string) (os.FileInfo, *users, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	u, err := parseUsers(data)
	return fi, u, err
}

// users returns the current file, reading it again first when it changed
// (looking at most once per ReloadCheck). A file that does not parse is
// logged once and the previous one kept.
func (s *Store) users() *users {
	now := time.Now()
	if now.UnixNano() < s.nextCheck.Load() || !s.reloadMu.TryLock() {
		return s.current.Load()
	}
	defer s.reloadMu.Unlock()
	s.nextCheck.Store(now.Add(s.opts.ReloadCheck).UnixNano())
	fi, err := os.Stat(s.path) // follows symlinks: a swapped ..data link is a change
	if err != nil {
		if err.Error() != s.statErr {
			s.logger.Error("users file unreadable; keeping the previous one", "err", err)
		}
		s.statErr = err.Error()
		return s.current.Load()
	}
	s.statErr = ""
	if sameFile(fi, s.loaded) || sameFile(fi, s.rejected) {
		return s.current.Load()
	}
	fi, u, err := readUsers(s.path)
	if err != nil {
		s.rejected = fi
		s.logger.Error("users file changed but is invalid; keeping the previous one", "err", err)
		return s.current.Load()
	}
	s.current.Store(u)
	s.loaded, s.rejected = fi, nil
	s.cache.Purge()
	s.logger.Info("users file reloaded", "names", len(u.byName))
	return u
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// Password authenticates a Basic credential from peer (an address without
// port: the throttle's key).
func (s *Store) Password(ctx context.Context, peer, name, password string) (Identity, error) {
	return s.authenticate(ctx, peer, name, password, false)
}

// Token authenticates a Bearer token "NAME.SECRET" from peer.
func (s *Store) Token(ctx context.Context, peer, token string) (Identity, error) {
	name, secret, ok := cutToken(token)
	if !ok {
		return s.authenticate(ctx, peer, "", token, true) // same cost as any miss
	}
	return s.authenticate(ctx, peer, name, secret, true)
}

func cutToken(token string) (name, secret string, ok bool) {
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			return token[:i], token[i+1:], i > 0 && i < len(token)-1
		}
	}
	return "", "", false
}

func (s *Store) authenticate(ctx context.Context, peer, name, secret string, token bool) (Identity, error) {
	u := s.users()
	key := cacheKey{name: name, secret: sha256.Sum256([]byte(secret))}
	p := u.byName[name]
	if p != nil && p.token == token && p.secret != nil && name != Anonymous {
		if e, ok := s.cache.Get(key); ok && e.from == u && s.opts.Now().Before(e.expires) {
			return Identity{Name: name, Permissions: p.perms}, nil
		}
	} else {
		p = nil // unknown, the other kind, or no secret: a miss, at full price
	}
	if wait := s.limit.check(peer); wait > 0 {
		return Identity{}, &ThrottledError{RetryAfter: wait}
	}
	h := u.dummy
	if p != nil {
		h = p.secret
	}
	select {
	case s.verify <- struct{}{}:
	case <-ctx.Done():
		return Identity{}, ctx.Err()
	}
	ok := h.verify([]byte(secret))
	<-s.verify
	if !ok || p == nil {
		s.limit.failed(peer)
		return Identity{}, ErrInvalidCredentials
	}
	s.cache.Add(key, cacheEntry{from: u, expires: s.opts.Now().Add(s.opts.CacheTTL)})
	return Identity{Name: name, Permissions: p.perms}, nil
}

// User returns the identity of a user or token by name, with no secret:
// for a verified certificate's CN, or an identity a node forwarded. Only
// names in the file exist (Anonymous when the file lists "*").
func (s *Store) User(name string) (Identity, bool) {
	p, ok := s.users().byName[name]
	if !ok {
		return Identity{}, false
	}
	return Identity{Name: name, Permissions: p.perms}, true
}

// Anonymous returns the identity of a caller without credentials: the "*"
// user's permissions, or none.
func (s *Store) Anonymous() Identity {
	id, _ := s.User(Anonymous)
	id.Name = Anonymous
	return id
}
