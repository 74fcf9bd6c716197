package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/internal/testnet"
)

// TestPprofAddr checks --pprof-addr: when set, the profile index is served
// on that address (and not on the gRPC port); when unset, the node listens
// on its gRPC and Raft addresses and nothing else.
func TestPprofAddr(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("counting this process's listening sockets needs Linux's /proc")
	}
	before := listeningSockets(t)

	cfg := singleNode(t, filepath.Join(t.TempDir(), "off"), "off", true)
	stop := startNodes(t, []config{cfg})
	waitMembers(t, cfg.grpcAddr, 1)
	if got := listeningSockets(t) - before; got != 2 {
		t.Errorf("without --pprof-addr the node listens on %d sockets, want 2 (gRPC and Raft)", got)
	}
	if code, _ := httpGet("http://" + cfg.grpcAddr + "/debug/pprof/"); code == http.StatusOK {
		t.Error("the gRPC port serves /debug/pprof/")
	}
	stop()

	cfg = singleNode(t, filepath.Join(t.TempDir(), "on"), "on", true)
	cfg.pprofAddr = testnet.FreeAddr(t)
	stop = startNodes(t, []config{cfg})
	defer stop()
	waitMembers(t, cfg.grpcAddr, 1)
	if got := listeningSockets(t) - before; got != 3 {
		t.Errorf("with --pprof-addr the node listens on %d sockets, want 3 (gRPC, Raft, pprof)", got)
	}
	code, body := httpGet("http://" + cfg.pprofAddr + "/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/: %d %q", code, body)
	}
	if code, body = httpGet("http://" + cfg.pprofAddr + "/debug/pprof/heap?debug=1"); code != http.StatusOK {
		t.Fatalf("GET /debug/pprof/heap: %d %q", code, body)
	}
	if code, _ := httpGet("http://" + cfg.grpcAddr + "/debug/pprof/"); code == http.StatusOK {
		t.Error("the gRPC port serves /debug/pprof/")
	}
}

// httpGet returns the status and body of a GET, or 0 when none came back.
func httpGet(url string) (int, string) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// listeningSockets counts this process's TCP sockets in the LISTEN state:
// its open socket inodes (/proc/self/fd) found listening in /proc/net/tcp
// or tcp6.
func listeningSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(inode, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && mine[f[9]] {
				n++
			}
		}
	}
	return n
}
