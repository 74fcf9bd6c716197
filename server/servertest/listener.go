package servertest

import (
	"net"
	"sync"
)

// severableListener tracks the connections it accepts so a test can drop
// them all at once, as a crash or a cut cable would.
type severableListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newSeverableListener(l net.Listener) *severableListener {
	return &severableListener{Listener: l, conns: map[net.Conn]struct{}{}}
}

// Accept implements net.Listener.
func (l *severableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

// sever closes the listener and every connection it accepted.
func (l *severableListener) sever() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]struct{}{}
}
