package sqlitedb

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Checksum digests the schema and every row of every user table, in one read
// transaction together with the Raft position it reflects. sqlraft's own
// tables are left out: they record where a node is, not what it holds. Rows
// are visited in rowid (or primary key) order, values are hashed with their
// storage class, so two replicas agree exactly when their content does,
// whatever their page layout.
//
// It runs on a connection of its own, as a stream does (and counts as one
// against Options.MaxStreams): a long hash must not hold one of the pooled
// readers that validation of every write needs, nor keep Replace waiting;
// Replace and Close stop it instead (ErrStreamStopped).
func (db *DB) Checksum(ctx context.Context) (Position, string, error) {
	var pos Position
	h := sha256.New()
	err := db.withStreamConn(ctx, func(ctx context.Context, c *conn) error {
		return readTx(ctx, c, func() error {
			var err error
			if pos, err = readApplied(ctx, c); err != nil {
				return err
			}
			return c.internal(func() error { return hashContent(ctx, c, h) })
		})
	})
	if err != nil {
		return Position{}, "", err
	}
	return pos, hex.EncodeToString(h.Sum(nil)), nil
}

type table struct {
	name  string
	rowid bool
}

func hashContent(ctx context.Context, c *conn, h hash.Hash) error {
	var tables []table
	err := queryRows(ctx, c, `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema
		WHERE name NOT LIKE '\_sqlraft%' ESCAPE '\' AND tbl_name NOT LIKE '\_sqlraft%' ESCAPE '\'
		ORDER BY type, name`, nil,
		func(v []driver.Value) error {
			for _, x := range v {
				hashValue(h, x)
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = queryRows(ctx, c, `SELECT name, wr FROM pragma_table_list
		WHERE schema = 'main' AND type IN ('table', 'shadow') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		AND name NOT LIKE '\_sqlraft%' ESCAPE '\' ORDER BY name`, nil,
		func(v []driver.Value) error {
			tables = append(tables, table{name: v[0].(string), rowid: v[1].(int64) == 0})
			return nil
		})
	if err != nil {
		return err
	}
	for _, t := range tables {
		if err := hashTable(ctx, c, h, t); err != nil {
			return fmt.Errorf("checksum table %s: %w", t.name, err)
		}
	}
	return nil
}

func hashTable(ctx context.Context, c *conn, h hash.Hash, t table) error {
	q := `SELECT * FROM "` + strings.ReplaceAll(t.name, `"`, `""`) + `"`
	if t.rowid {
		q = `SELECT _rowid_, * FROM "` + strings.ReplaceAll(t.name, `"`, `""`) + `" ORDER BY _rowid_`
	}
	h.Write([]byte("table\x00" + t.name + "\x00"))
	st, err := c.Prepare(q)
	if err != nil {
		return err
	}
	defer st.Close()
	dr, err := st.(*sqlite3.SQLiteStmt).QueryContext(ctx, nil)
	if err != nil {
		return err
	}
	rows := dr.(*sqlite3.SQLiteRows)
	defer rows.Close()
	neutralizeDeclTypes(rows.DeclTypes())
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		for _, v := range dest {
			hashValue(h, v)
		}
		h.Write([]byte{'\n'})
	}
}

func hashValue(h hash.Hash, v driver.Value) {
	var b [9]byte
	switch x := v.(type) {
	case nil:
		h.Write([]byte{0})
	case int64:
		b[0] = 1
		binary.BigEndian.PutUint64(b[1:], uint64(x))
		h.Write(b[:])
	case float64:
		b[0] = 2
		binary.BigEndian.PutUint64(b[1:], math.Float64bits(x))
		h.Write(b[:])
	case string:
		b[0] = 3
		binary.BigEndian.PutUint64(b[1:], uint64(len(x)))
		h.Write(b[:])
		h.Write([]byte(x))
	case []byte:
		b[0] = 4
		binary.BigEndian.PutUint64(b[1:], uint64(len(x)))
		h.Write(b[:])
		h.Write(x)
	default:
		fmt.Fprintf(h, "?%v", x)
	}
}
