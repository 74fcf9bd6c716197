// Package raftlog is sqlraft's Raft log store: hashicorp/raft-wal, set up so
// that it is correct on Windows as on Linux, and so that a failed write never
// leaves it refusing every later one.
//
// raft-wal fsyncs directories (after creating a segment file, after deleting
// one, after creating its meta database). Windows refuses to flush a
// directory handle (ERROR_ACCESS_DENIED), so the store gives raft-wal a file
// system (vfs.go) and a meta store (meta.go) that sync directories where the
// operating system allows it (everywhere but Windows) and skip the sync where
// it does not: NTFS journals its metadata, so a created or renamed file's
// directory entry survives a crash without it.
//
// raft-wal's tail segment advances its in-memory index before the batch is
// durable; when the write or the fsync fails, every later append is refused
// ("non-monotonic append to segment"). Store therefore closes and reopens the
// WAL after any failed write, so that the in-memory tail is rebuilt from the
// disk, and drops whatever the failed append left on disk: a failed
// StoreLogs stores nothing, as Raft assumes, and Raft's retry succeeds.
//
// The files on disk are raft-wal's own: a data directory written by a plain
// raft-wal v0.4.0 opens with this store and the other way round.
package raftlog
