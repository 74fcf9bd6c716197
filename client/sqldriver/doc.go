// Package sqldriver is a database/sql driver for sqlraft, built on the
// client package. Importing it registers the driver "sqlraft":
//
//	import _ "github.com/sqlraft/sqlraft/client/sqldriver"
//
//	db, err := sql.Open("sqlraft", "sqlraft://node1:6001,node2:6001,node3:6001?consistency=linearizable")
//
// The DSN lists the nodes' client addresses; ParseDSN documents every
// parameter (consistency, freshness, user, password, token, tls, ca, cert,
// key, server_name, no_forward, retry_unknown_outcome, max_message_size).
// One client, with one gRPC connection per node, serves the whole pool;
// leader discovery and retries are the client's (see package client): a
// write whose outcome is unknown is returned as an error, never repeated,
// unless the DSN sets retry_unknown_outcome=true.
//
// Statements: Exec runs DatabaseService.Execute, Query runs
// DatabaseService.Query at the DSN's consistency. Parameters are positional
// (?, ?NNN) or named with sql.Named (for :name, @name, $name). Arguments
// are converted by client.ValueOf: integers, floats, string, []byte, bool
// (as 1 or 0), time.Time (as TEXT in client.TimeFormat, UTC), nil, and
// anything database/sql's default conversion turns into one of these
// (driver.Valuer, named types). A SQL error of the statement is returned as
// a *client.StatementError; refused requests as gRPC status errors.
//
// Results: INTEGER scans as int64, REAL as float64, TEXT as string, BLOB as
// []byte; database/sql converts these to the destination's type (an
// INTEGER 0 or 1 into a bool, ...). TEXT in a column declared DATE,
// DATETIME or TIMESTAMP comes back as time.Time when it parses
// (client.ParseTime). A Query's rows arrive in one response, within the
// message size limit; for larger results use client.QueryStream.
//
// Transactions: the statements Exec'd in a transaction are buffered and
// sent at Commit as ONE DatabaseService.Request with transaction set, so
// they commit together (one Raft entry, one SQLite transaction) or not at
// all; Rollback discards them without sending anything. Consequences:
//
//   - a Query inside a transaction returns ErrQueryInTx: it could not see
//     the transaction's own buffered writes, and reading outside the
//     transaction would silently break its isolation. Read before Begin or
//     after Commit;
//   - a Result from an Exec inside a transaction (RowsAffected,
//     LastInsertId) is known only after Commit returns; before, it returns
//     ErrResultPending;
//   - a SQL error in any statement surfaces at Commit, which rolls all of
//     them back;
//   - the context given to BeginTx bounds the Commit; read-only
//     transactions and isolation levels other than the default and
//     serializable are refused.
//
// To share an existing client (with options the DSN cannot express), use
// sql.OpenDB(NewConnector(c, ConnOptions{...})).
package sqldriver
