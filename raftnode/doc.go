// Package raftnode is the replication core of a sqlraft node: a
// hashicorp/raft instance speaking over gRPC (Jille/raft-grpc-transport),
// the FSM that applies committed entries to the node's SQLite database, and
// the read paths that decide when a local read is safe.
//
// # Entries
//
// Every Raft log entry's payload is a raftlog.v1.Command (see
// proto/sqlraft/raftlog/v1): a client request (statements plus the
// transaction flag), a STRONG read, or a change to the replicated node table
// that maps node IDs to client addresses. The proposing leader stamps each
// command with a wall-clock time and a random seed; replicas use them for
// SQLite's non-deterministic functions, so every replica stores the same
// values (see sqlitedb.Clock).
//
// # Applying
//
// FSM implements raft.BatchingFSM. Raft hands it every batch of committed
// entries it has; the FSM applies the whole batch in one SQLite transaction,
// each entry inside its own savepoint, and records the batch's last index in
// the same transaction. Concurrent writers therefore share Raft entries (the
// leader batches its apply channel) and SQLite commits, while each request
// stays atomic: a request with transaction set rolls back to its savepoint
// on the first error. If SQLite aborts the whole transaction (an I/O error),
// the batch is retried entry by entry.
//
// Because the applied index lives inside the database, a restart needs no
// snapshot restore: Raft replays the entries after its last snapshot and the
// FSM skips those the file already holds (Config.NoSnapshotRestoreOnStart).
// Only a database older than the newest snapshot is restored from it.
//
// # Reads
//
// Node.LinearizableRead implements read-index: note the commit index,
// confirm leadership with one heartbeat round shared by every read waiting
// at the time, then wait until the FSM has applied the noted index. A new
// leader serves reads only after applying a barrier of its own term, so the
// index it notes covers everything its predecessors committed. WeakRead only
// checks leadership; FreshRead bounds a follower's staleness by the time
// since it last heard from the leader; StrongRead sends the read through the
// log.
//
// # Membership
//
// Join, Remove and TransferLeadership run on the leader (the server package
// forwards them). Joining with an unchanged ID, address and role is a no-op;
// a new address for a known ID updates it. The node table travels through
// the log and inside snapshots, so every node can forward to the leader.
package raftnode
