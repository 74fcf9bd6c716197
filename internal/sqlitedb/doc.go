// Package sqlitedb is a node's SQLite database as sqlraft uses it: one
// writer connection, used only by the Raft FSM goroutine, and a pool of
// query-only connections for local reads, all on one file in WAL mode.
//
// It owns everything that touches SQLite directly: binding and validating
// parameters (placeholders are scanned from the SQL text, so unknown named
// parameters and wrong counts are caught before anything runs), converting
// values to and from the API's Value, the authorizer that keeps client SQL
// away from transaction control, ATTACH, connection pragmas and sqlraft's
// own _sqlraft_* tables, the deterministic replacements for SQLite's clock
// and random functions on the writer (Clock), the content checksum, and
// swapping the file for a restored snapshot with every connection closed.
package sqlitedb
