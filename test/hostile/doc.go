// Package hostile holds tests of hostile clients against a real 3-node
// cluster (server/servertest: real gRPC over loopback, real SQLite): a
// QueryStream on a million-row table whose client stops reading, 1,000 idle
// connections, writes just over and just under the message size limit,
// 10,000 statements in one request, and a 100 MB blob parameter; and, as a
// control, a client sending cheap valid reads back to back.
//
// Each test checks that the hostile client gets a clear error or is served,
// and measures the impact on a victim: a client running a closed loop of
// small writes and linearizable point reads against the leader, on a
// connection of its own, first in a baseline window with no hostile client,
// then in a window while the hostile client does its thing. The tests log
// both windows' latency (p50, p99), throughput and retries, and print a
// summary table at the end. They assert only generous bounds, so they do
// not depend on the machine's speed: the victim completes at least a few
// operations while the hostile client runs (the hostile window lasts until
// it has, up to 30 s), its p99 stays under 10 s (an election on a loaded
// machine, not a stall), and it gets no error but retryable ones. After each
// hostile client goes away the tests check that nothing it caused is left
// (streams, handlers, server connections) and that the cluster still
// converges and takes a snapshot.
//
//	go test -count=1 -v ./test/hostile
//
// The whole set takes about a minute and a half on a loaded 2-core machine;
// -short uses a table of 100,000 rows and shorter windows. The hostile
// client, the victim and the three nodes share one process and its CPUs, as
// clients on the same host would; a hostile client that floods the server
// therefore slows the victim by taking CPU as much as by anything the server
// does, which the control shows.
package hostile
