//go:build robustness

package robustness

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// linkFault is what happens to the bytes of one direction of a link (from
// one node, or the clients, to another node).
type linkFault struct {
	// Blackhole: connections are cut when it starts; new ones are accepted
	// and read from, but nothing reaches the other side, until it ends.
	Blackhole bool
	// Drop discards the bytes of this direction only (a one-way loss). The
	// link's connections are cut when it starts and when it ends; while it
	// lasts, new connections come up but lose everything one way.
	Drop bool
	// Delay and Jitter hold every chunk for Delay ± Jitter (order kept).
	Delay, Jitter time.Duration
}

// Proxy listens on a node's advertised address and forwards to its real
// one. It tells the sending node by the connection's source address (each
// node process dials from its own loopback address; see
// cmd/sqlraftd/dialsource_robustness.go), so faults apply per directed
// link: Faults[src] is the fault on src → this node; the reverse direction
// of the same connections (this node's answers to src) is Faults[src] of
// the proxy's Reverse map.
type Proxy struct {
	Name   string // the destination node
	lis    net.Listener
	target string
	source func(net.Addr) string // source address → sending node's name

	mu      sync.Mutex
	faults  map[string]linkFault // src → this node
	reverse map[string]linkFault // this node → src (answers)
	conns   map[string]map[*proxyConn]struct{}
	closed  bool
}

type proxyConn struct {
	client, server net.Conn
}

func (c *proxyConn) close() {
	c.client.Close()
	if c.server != nil {
		c.server.Close()
	}
}

// newProxy listens on 127.0.0.1:0 and forwards to target.
func newProxy(name, target string, source func(net.Addr) string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Name: name, lis: lis, target: target, source: source, faults: map[string]linkFault{},
		reverse: map[string]linkFault{}, conns: map[string]map[*proxyConn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the address nodes and clients dial.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.lis.Close()
	for _, set := range p.conns {
		for c := range set {
			c.close()
		}
	}
	p.mu.Unlock()
}

// Set changes the faults of the link src → this node (in) and of the answers
// this node sends back to src (out). Starting a blackhole in either
// direction cuts the link's connections, as a partition does to a
// connection that then times out.
func (p *Proxy) Set(src string, in, out linkFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := cuts(p.faults[src]) || cuts(p.reverse[src])
	p.faults[src], p.reverse[src] = in, out
	now := cuts(in) || cuts(out)
	// Entering or leaving a partition or a loss, the link's connections
	// go: TCP never delivers a stream with a hole in it, so a connection
	// that lost bytes must not carry any more (the peers reconnect).
	if was != now {
		for c := range p.conns[src] {
			c.close()
		}
		delete(p.conns, src)
	}
}

// cuts reports whether f loses bytes (and so ends connections when it
// starts or stops).
func cuts(f linkFault) bool { return f.Blackhole || f.Drop }

func (p *Proxy) fault(src string, reverse bool) linkFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reverse {
		return p.reverse[src]
	}
	return p.faults[src]
}

func (p *Proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	src := p.source(client.RemoteAddr())
	pc := &proxyConn{client: client}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		return
	}
	if p.conns[src] == nil {
		p.conns[src] = map[*proxyConn]struct{}{}
	}
	p.conns[src][pc] = struct{}{}
	blackholed := p.faults[src].Blackhole || p.reverse[src].Blackhole
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns[src], pc)
		p.mu.Unlock()
		pc.close()
	}()
	if blackholed { // accept, read, never answer: until the partition ends
		io.Copy(io.Discard, client)
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	pc.server = server
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, src, false); done <- struct{}{} }()
	go func() { p.pipe(client, server, src, true); done <- struct{}{} }()
	<-done
}

// pipe copies from → to, applying the fault of its direction chunk by
// chunk (read at the time each chunk arrives).
func (p *Proxy) pipe(to, from net.Conn, src string, reverse bool) {
	defer to.Close()
	defer from.Close()
	type chunk struct {
		b   []byte
		due time.Time
	}
	queue := make(chan chunk, 1024)
	go func() {
		defer to.Close()
		for c := range queue {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := to.Write(c.b); err != nil {
				for range queue { // drain so the reader never blocks
				}
				return
			}
		}
	}()
	defer close(queue)
	buf := make([]byte, 32<<10)
	var last time.Time
	for {
		n, err := from.Read(buf)
		if n > 0 {
			f := p.fault(src, reverse)
			if !f.Drop && !f.Blackhole {
				due := time.Now().Add(f.Delay + jitter(f.Jitter))
				if due.Before(last) {
					due = last // keep order
				}
				last = due
				queue <- chunk{b: append([]byte(nil), buf[:n]...), due: due}
			}
		}
		if err != nil {
			return
		}
	}
}

func jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*j))) - j
}
