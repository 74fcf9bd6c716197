// Package testnet holds network helpers for in-process clusters in tests:
// a listener whose connections can all be cut at once, as a crash or a cut
// cable would.
package testnet

import (
	"net"
	"sync"
)

// SeverableListener tracks the connections it accepts so a test can drop
// them all at once, as a crash or a cut cable would.
type SeverableListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool // new connections are closed at once (Pause)
}

// NewSeverableListener wraps l.
func NewSeverableListener(l net.Listener) *SeverableListener {
	return &SeverableListener{Listener: l, conns: map[net.Conn]struct{}{}}
}

// Accept implements net.Listener.
func (l *SeverableListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		paused := l.paused
		if !paused {
			l.conns[c] = struct{}{}
		}
		l.mu.Unlock()
		if !paused {
			return c, nil
		}
		c.Close()
	}
}

// Pause drops every connection accepted so far and closes each new one as
// soon as it arrives, until Resume: a cut link that the listener outlives,
// so peers reconnect once it is resumed.
func (l *SeverableListener) Pause() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused = true
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]struct{}{}
}

// Resume accepts connections again after Pause.
func (l *SeverableListener) Resume() {
	l.mu.Lock()
	l.paused = false
	l.mu.Unlock()
}

// Sever closes the listener and every connection it accepted.
func (l *SeverableListener) Sever() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]struct{}{}
}
