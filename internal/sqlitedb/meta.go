package sqlitedb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/mattn/go-sqlite3"
)

// sqlraft keeps two tables of its own inside the database, so that they
// change in the same transactions as the data and travel inside snapshots:
// the Raft position the data reflects, and the nodes' client addresses.
const metaSchema = `
CREATE TABLE IF NOT EXISTS _sqlraft_applied(
  id INTEGER PRIMARY KEY CHECK (id = 0), raft_index INTEGER NOT NULL, raft_term INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS _sqlraft_nodes(id TEXT PRIMARY KEY, grpc_address TEXT NOT NULL) STRICT;
`

func createMeta(c *sqlite3.SQLiteConn) error {
	if _, err := c.Exec(metaSchema, nil); err != nil {
		return fmt.Errorf("create sqlraft tables: %w", err)
	}
	return nil
}

// Position is a Raft log position.
type Position struct {
	Index uint64
	Term  uint64
}

// Applied returns the Raft position the database content reflects.
func (db *DB) Applied(ctx context.Context) (Position, error) {
	var p Position
	err := db.withChecker(ctx, func(c *conn) error {
		var err error
		p, err = readApplied(ctx, c)
		return err
	})
	return p, err
}

func readApplied(ctx context.Context, c *conn) (Position, error) {
	var p Position
	st, err := c.prepared("SELECT raft_index, raft_term FROM _sqlraft_applied WHERE id = 0")
	if err != nil {
		return p, err
	}
	err = c.internal(func() error {
		return stepRows(ctx, st, nil, func(v []driver.Value) error {
			index, ok1 := v[0].(int64)
			term, ok2 := v[1].(int64)
			if !ok1 || !ok2 {
				return fmt.Errorf("_sqlraft_applied holds %T/%T, not integers", v[0], v[1])
			}
			p.Index, p.Term = uint64(index), uint64(term)
			return nil
		})
	})
	return p, err
}

// Nodes returns the replicated map of node ID to client address.
func (db *DB) Nodes(ctx context.Context) (map[string]string, error) {
	nodes := map[string]string{}
	err := db.withChecker(ctx, func(c *conn) error {
		return c.internal(func() error {
			return queryRows(ctx, c, "SELECT id, grpc_address FROM _sqlraft_nodes", nil, func(v []driver.Value) error {
				id, ok1 := v[0].(string)
				addr, ok2 := v[1].(string)
				if !ok1 || !ok2 {
					return fmt.Errorf("_sqlraft_nodes holds %T/%T, not text", v[0], v[1])
				}
				nodes[id] = addr
				return nil
			})
		})
	})
	return nodes, err
}

// queryRows runs one internal query and calls fn for each row.
func queryRows(ctx context.Context, c *conn, sql string, args []driver.NamedValue, fn func([]driver.Value) error) error {
	st, err := c.Prepare(sql)
	if err != nil {
		return err
	}
	defer st.Close()
	return stepRows(ctx, st.(*sqlite3.SQLiteStmt), args, fn)
}

// stepRows runs a prepared query and calls fn for each row.
func stepRows(ctx context.Context, st *sqlite3.SQLiteStmt, args []driver.NamedValue, fn func([]driver.Value) error) error {
	rows, err := st.QueryContext(ctx, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := fn(dest); err != nil {
			return err
		}
	}
}
