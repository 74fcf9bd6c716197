// Package snapshot is sqlraft's Raft snapshot store.
//
// A Store (a raft.SnapshotStore) keeps a chain of snapshots of the node's
// SQLite database: one full snapshot (a database file) followed by
// incremental ones, each holding the last version of every page written
// since the previous snapshot (write-ahead-log frames, one per page), so
// that taking a snapshot costs in proportion to the pages written since the
// last one, not to the database's size; an incremental that would reach
// half the database is taken as a full snapshot instead. The chain is
// consolidated into a single full snapshot in the background, and a stream
// of a chain much larger than its database sends one consolidated image.
//
// Readers of snapshot files (the stream Open hands to the Raft transport,
// and backup streams) hold a Lease on the files while they read. Operations
// that rename, remove or write into leased files wait for the lease (they
// never fail because of it); a lease ends when its stream is closed, its
// context ends, or nothing was read for the idle timeout. Only
// consolidation and pruning wait: new snapshots, and therefore Raft log
// truncation, go on while streams are open.
//
// With Options.Pull set, the stream Open hands Raft is only a manifest: the
// follower's sink pulls the files from the leader (ServePull, under the
// same lease) in large messages, verifying each, and Install moves a
// received snapshot's files into the live database instead of copying
// them. DESIGN.md, "Installs by pull" and "Installing without a second
// copy", explains why.
//
// Every file operation goes through the FS interface. StrictFS refuses to
// rename or remove open files, as Windows does, so the tests see Windows'
// semantics on every platform; scripts/test-windows.sh also runs them under
// wine.
//
// The FSM side: Store.Capture from FSM.Snapshot, Store.Install (or Restore
// plus sqlitedb.DB.Replace) from FSM.Restore.
//
// Store is a thin composition of parts with one job each, talking through
// small interfaces: the Catalog (the snapshots on disk: sinks, streams,
// consolidation, pruning, crash repair), the LeaseManager (readers' leases
// on snapshot files), the WALCapture (capturing the live database, through
// CaptureSource) and the Installer (swapping a snapshot in as the live
// database, through InstallTarget). DESIGN.md explains the parts and their
// locks, the files on disk, the chain, the lease rules and crash recovery.
package snapshot
