package main

import (
	"net"
	"strings"
	"testing"

	"github.com/sqlraft/sqlraft/server/servertest"
)

// exec and query take a list of nodes and skip one that does not answer;
// a write that never reached the dead node is safe to send to the next.
func TestAddressListFailsOver(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	list := dead + "," + c.Followers()[0].GRPCAddr
	if out, err := run(t, list, "exec", "CREATE TABLE t(x)"); err != nil || !strings.Contains(out, "0 row(s) affected") {
		t.Fatalf("exec via %s: %v\n%s", list, err, out)
	}
	if out, err := run(t, list, "query", "SELECT count(*) FROM t"); err != nil || !strings.Contains(out, "0") {
		t.Fatalf("query via %s: %v\n%s", list, err, out)
	}
	// Other commands use the first node of the list.
	if _, err := run(t, c.Leader().GRPCAddr+","+dead, "status"); err != nil {
		t.Fatalf("status: %v", err)
	}
}
