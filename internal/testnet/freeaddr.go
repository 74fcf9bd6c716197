package testnet

import (
	"net"
	"sync"
	"testing"
)

// handedOut holds every address FreeAddr returned: a port found free and
// closed again can be the next one the kernel hands out, and two nodes (or
// both addresses of one) must not be given the same.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// FreeAddr returns a loopback address that was free a moment ago and that
// it has not returned before in this process. For tests that must pass an
// address (not a listener) to a process they start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
}
