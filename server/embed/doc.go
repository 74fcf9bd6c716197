// Package embed assembles a whole sqlraft node — the data directory and its
// identity, the replication core (raftnode: SQLite, the Raft log, snapshots,
// Raft and its gRPC transport), the client gRPC server (server: the
// database and cluster services, health, reflection) and the node's way into
// its cluster (bootstrap, discovery, join, address publishing) — from one
// Config, and owns its start and its graceful stop.
//
// It is the only place a node is wired: sqlraftd parses its flags into a
// Config and calls Start; the in-process test clusters (server/servertest)
// start every node through it too, so tests run the same start-up and
// shutdown sequence as the daemon. A Go program can embed a node the same
// way:
//
//	n, err := embed.Start(embed.Config{
//		Node:     raftnode.Config{DataDir: "data", RaftAddr: "127.0.0.1:6002"},
//		DefaultID: "node1",
//		GRPCAddr: "127.0.0.1:6001",
//	})
//	if err != nil { ... }
//	defer n.Stop()
//
// # Start-up
//
// Start resolves the node's ID against the one recorded in the data
// directory, listens for clients, opens the replication core, serves the
// client API, and then hands the node to its membership owner (membership.go),
// which runs in the background for the node's whole life:
//
//   - InitialVoters set: bootstrap a cluster of exactly those voters (a node
//     with Raft state ignores this; every member may be given the same list);
//   - BootstrapExpect or DiscoverDNS set: find the peers (internal/discovery)
//     and bootstrap or join as its rule decides;
//   - Join set: ask the listed members to add this node, round after round,
//     until one accepts;
//   - none of these: a voter bootstraps a one-node cluster on its first
//     start; a non-voter waits to be added.
//
// After that it keeps this node's entry in the replicated node table
// current: whenever the node's view changes (raftnode.Node.Changed) and the
// table lacks this node's client address, it asks the leader to record it.
// A failed attempt is retried after RetryInterval; nothing polls.
//
// # Stop
//
// Stop is the graceful path (SIGTERM in sqlraftd): health turns
// NOT_SERVING, the membership owner stops, a leader hands leadership to
// another voter, in-flight calls finish (bounded by ShutdownTimeout), and
// Raft, the log and SQLite close. The node stays in the cluster
// configuration. Close is the abrupt path: the same, without the hand-over
// and without waiting for in-flight calls.
package embed
