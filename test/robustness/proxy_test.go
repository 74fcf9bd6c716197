//go:build robustness

package robustness

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// TestClassify: only what the API says was not proposed counts as failed;
// everything that may hide an applied write is unknown.
func TestClassify(t *testing.T) {
	withReason := func(reason string) error {
		st, err := status.New(codes.Unavailable, reason).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "sqlraft.v1"})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, c := range []struct {
		err  error
		want outcome
	}{
		{nil, outcomeOK},
		{withReason("NO_LEADER"), outcomeFailed},
		{status.Error(codes.FailedPrecondition, "not the leader"), outcomeFailed},
		{status.Error(codes.InvalidArgument, "no such table"), outcomeFailed},
		{status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: connection refused\""), outcomeFailed},
		{withReason("OUTCOME_UNKNOWN"), outcomeUnknown},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), outcomeUnknown},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), outcomeUnknown},
		{io.EOF, outcomeUnknown},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	takeUnknownErrors()
}
