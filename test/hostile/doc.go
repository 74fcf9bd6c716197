// Package hostile holds tests of hostile clients against a real 3-node
// cluster (server/servertest: real gRPC over loopback, real SQLite): a
// QueryStream on a million-row table whose client stops reading, 1,000 idle
// connections, requests just over and just under the message size limit,
// 10,000 statements in one request, and a 100 MB blob parameter.
//
// Each test checks that the hostile client gets a clear error or is served,
// and measures the impact on a victim: a client running a closed loop of
// small writes and linearizable point reads against the same cluster, first
// in a baseline window with no hostile client, then in a window while the
// hostile client does its thing. The tests log both windows' latency (p50,
// p99) and throughput and print a summary table at the end; they assert only
// generous bounds (the victim keeps completing operations, its p99 stays
// under a few seconds, and it gets no error but retryable ones), so they do
// not depend on the machine's speed. After each hostile client goes away the
// tests check that nothing it caused is left behind (streams, goroutines)
// and that the cluster still converges.
//
//	go test -count=1 -v ./test/hostile
//
// The whole set takes about two minutes on a loaded 2-core machine;
// -short uses a table of 100,000 rows and shorter windows. The hostile
// client, the victim and the three nodes share one process, so the
// hostile client's own work (encoding a 100 MB request, say) competes with
// the nodes for the same CPUs, as a client on the same host would.
package hostile
