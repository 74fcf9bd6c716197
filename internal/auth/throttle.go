package auth

import (
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// throttle limits failed authentications per peer address: each failure
// takes a token from the peer's bucket, and a peer with an empty bucket is
// refused before anything is verified (so a guesser costs no hashing).
// Refusals and failures are logged at most once per window per peer, with
// how many happened since the last line.
type throttle struct {
	every  time.Duration // one failure's token comes back after this long
	burst  int           // failures a peer may have in a row
	window time.Duration // at most one log line per peer per window
	logger *slog.Logger

	mu    sync.Mutex
	peers *lru.Cache[string, *peerState] // bounded: the least recently seen peer goes first
}

type peerState struct {
	bucket  *rate.Limiter
	logged  time.Time // last log line
	pending int       // failures and refusals since
}

// maxPeers bounds the peers the throttle remembers. A peer evicted by
// newer ones starts over with a full bucket; reaching this many needs that
// many addresses failing at once.
const maxPeers = 16384

func newThrottle(every time.Duration, burst int, window time.Duration, logger *slog.Logger) *throttle {
	c, _ := lru.New[string, *peerState](maxPeers)
	return &throttle{every: every, burst: burst, window: window, logger: logger, peers: c}
}

func (t *throttle) state(peer string) *peerState {
	st, ok := t.peers.Get(peer)
	if !ok {
		st = &peerState{bucket: rate.NewLimiter(rate.Every(t.every), t.burst)}
		t.peers.Add(peer, st)
	}
	return st
}

// check returns 0 when peer may try, or how long until it may.
func (t *throttle) check(peer string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.peers.Peek(peer)
	if !ok {
		return 0
	}
	now := time.Now()
	tokens := st.bucket.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	wait := time.Duration((1 - tokens) * float64(t.every))
	t.noteLocked(st, peer, now, "authentication throttled: too many failures from this address")
	return max(wait, time.Millisecond)
}

// failed records a failure from peer.
func (t *throttle) failed(peer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state(peer)
	now := time.Now()
	st.bucket.AllowN(now, 1)
	t.noteLocked(st, peer, now, "authentication failed")
}

func (t *throttle) noteLocked(st *peerState, peer string, now time.Time, msg string, attrs ...any) {
	st.pending++
	if now.Sub(st.logged) < t.window {
		return
	}
	t.logger.Warn(msg, append(attrs, "peer", peer, "failures_since_last_log", st.pending,
		"next_log_after", t.window)...)
	st.logged, st.pending = now, 0
}
