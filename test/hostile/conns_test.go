package hostile

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// TestIdleConnections: 1,000 clients each open a connection of their own
// to the leader (TCP and the HTTP/2 handshake), make one cheap call, and
// stay idle. Each is served and stays connected; once they close, nothing
// they caused is left.
func TestIdleConnections(t *testing.T) {
	const clients = 1000
	c := newCluster(t)
	leader := c.Leader()
	before := settled()
	h := newHostile(t)
	var conns []*grpc.ClientConn
	measure(t, c, "1,000 idle connections", "served: each handshake and call succeeds; the connections stay up", func(sp *span) string {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := time.Now()
		conns = openIdle(t, h, leader.GRPCAddr, clients)
		opened := time.Since(start)
		runtime.ReadMemStats(&m1)
		did := fmt.Sprintf("opened %d connections in %v (+%d goroutines, +%.0f MiB heap, both ends in one process), then idled",
			len(conns), opened.Round(time.Millisecond), runtime.NumGoroutine()-before.goroutines, float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/(1<<20))
		sp.wait()
		return did
	})
	ready := 0
	for _, conn := range conns {
		if conn.GetState() == connectivity.Ready {
			ready++
		}
	}
	if ready != clients {
		t.Errorf("%d of %d idle connections are still up", ready, clients)
	}
	h.leave()
	checkNothingLeft(t, c, before)
}

// openIdle opens n connections to addr, each with one cheap call (a NONE
// read), a few at a time as a crowd of clients would arrive.
func openIdle(t *testing.T, h *hostileClient, addr string, n int) []*grpc.ClientConn {
	t.Helper()
	conns := make([]*grpc.ClientConn, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i] = h.conn(addr)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := sqlraftv1.NewDatabaseServiceClient(conns[i]).Query(ctx, &sqlraftv1.QueryRequest{
					Statements: []*sqlraftv1.Statement{st("SELECT 1")}, Consistency: sqlraftv1.ReadConsistency_READ_CONSISTENCY_NONE})
				cancel()
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return conns
}
