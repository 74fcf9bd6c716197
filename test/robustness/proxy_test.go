//go:build robustness

package robustness

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes every line back.
func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line through addr and waits up to wait for the echo.
func roundTrip(t *testing.T, c net.Conn, wait time.Duration) error {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func dial(t *testing.T, p *Proxy) net.Conn {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProxyFaults: traffic passes; a blackhole cuts the link's connections
// and new ones get no answer until it heals; a one-way loss loses that
// direction; a delay holds bytes at least that long.
func TestProxyFaults(t *testing.T) {
	p, err := newProxy("n", echoServer(t), func(net.Addr) string { return "client" })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	if err := roundTrip(t, c, 5*time.Second); err != nil {
		t.Fatalf("clean link: %v", err)
	}

	p.Set("client", linkFault{Blackhole: true}, linkFault{Blackhole: true})
	if err := roundTrip(t, c, 2*time.Second); err == nil {
		t.Fatal("a connection survived the start of a partition")
	}
	if err := roundTrip(t, dial(t, p), 300*time.Millisecond); err == nil {
		t.Fatal("a new connection was answered during a partition")
	}
	p.Set("client", linkFault{}, linkFault{})
	if err := roundTrip(t, dial(t, p), 5*time.Second); err != nil {
		t.Fatalf("after healing: %v", err)
	}

	p.Set("client", linkFault{}, linkFault{Drop: true}) // answers lost
	if err := roundTrip(t, dial(t, p), 300*time.Millisecond); err == nil {
		t.Fatal("an answer crossed a one-way loss")
	}
	p.Set("client", linkFault{}, linkFault{})

	const delay = 200 * time.Millisecond
	p.Set("client", linkFault{Delay: delay}, linkFault{})
	start := time.Now()
	if err := roundTrip(t, dial(t, p), 5*time.Second); err != nil {
		t.Fatalf("delayed link: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("a %v delay took %v", delay, took)
	}
}

// TestClassify: only what the API says was not proposed counts as failed.
func TestClassify(t *testing.T) {
	if classify(nil) != outcomeOK {
		t.Fatal("nil")
	}
	if classify(io.EOF) != outcomeUnknown {
		t.Fatal("a bare transport error must leave the outcome unknown")
	}
}
