package sqlitedb

import (
	"bufio"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A SQL dump is what sqlite3's .dump writes: the schema and every row as
// SQL text that a fresh database replays into the same content. It is read
// from one read transaction (a LiveRead), so it is one consistent state,
// and streamed a row at a time: each row is turned into its INSERT
// statement by SQLite itself (quote() gives exact literals: integers,
// reals that read back to the same double, text byte for byte whether it
// is UTF-8 or not, and with NUL bytes, blobs as X'..', NULL), so the dump
// never holds more
// than one row. sqlraft's own _sqlraft_* tables, and the indexes and
// triggers on them, are left out; so are sqlite_sequence's rows for them.

// internalPrefix starts the name of every table sqlraft keeps for itself.
const internalPrefix = "_sqlraft_"

// notInternal is a SQL condition on a name column: not one of sqlraft's own
// tables. LIKE would read "_" as a wildcard.
func notInternal(col string) string {
	return fmt.Sprintf("substr(%s, 1, %d) != '%s'", col, len(internalPrefix), internalPrefix)
}

// DumpSQL writes the database as the read sees it to w as a SQL text dump.
// It runs on the read's own connection, within its transaction; Replace
// or Close stop it with ErrStreamStopped.
func (r *LiveRead) DumpSQL(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	d := &dumper{ctx: r.ctx, c: r.c, w: bw}
	err := r.c.internal(d.dump)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && errors.Is(context.Cause(r.ctx), ErrStreamStopped) {
		return ErrStreamStopped // Replace or Close stopped the read
	}
	return err
}

// dumper writes one dump.
type dumper struct {
	ctx context.Context
	c   *conn
	w   *bufio.Writer
}

// schemaObject is one row of sqlite_schema.
type schemaObject struct{ name, typ, sql string }

func (d *dumper) dump() error {
	d.w.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	tables, err := d.objects("type = 'table' AND " + notInternal("name") +
		" ORDER BY name = 'sqlite_sequence', rowid")
	if err != nil {
		return err
	}
	analyzed := false
	for _, t := range tables {
		if err := d.table(t, &analyzed); err != nil {
			return err
		}
	}
	others, err := d.objects("type IN ('index', 'trigger', 'view') AND " + notInternal("tbl_name") + " ORDER BY rowid")
	if err != nil {
		return err
	}
	for _, o := range others {
		d.w.WriteString(o.sql)
		d.w.WriteString(";\n")
	}
	_, err = d.w.WriteString("COMMIT;\n")
	return err
}

// objects returns the schema's objects that have SQL and match cond (a
// WHERE condition with its ORDER BY). The schema is small: it is held.
func (d *dumper) objects(cond string) ([]schemaObject, error) {
	var objs []schemaObject
	err := queryRows(d.ctx, d.c, "SELECT name, type, sql FROM sqlite_schema WHERE sql IS NOT NULL AND "+cond, nil,
		func(v []driver.Value) error {
			objs = append(objs, schemaObject{name: textOf(v[0]), typ: textOf(v[1]), sql: textOf(v[2])})
			return nil
		})
	return objs, err
}

// textOf is a TEXT value as the driver hands it.
func textOf(v driver.Value) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

// table writes one table: its CREATE statement and its rows, with the
// special cases sqlite3's .dump has for SQLite's own tables.
func (d *dumper) table(t schemaObject, analyzed *bool) error {
	where := ""
	switch {
	case t.name == "sqlite_sequence":
		d.w.WriteString("DELETE FROM sqlite_sequence;\n")
		where = " WHERE " + notInternal("name")
	case t.name == "sqlite_stat1":
		if !*analyzed { // creates sqlite_stat1, which the rows then fill
			d.w.WriteString("ANALYZE sqlite_schema;\n")
			*analyzed = true
		}
		where = " WHERE " + notInternal("tbl")
	case strings.HasPrefix(t.name, "sqlite_"):
		return nil // sqlite_stat4 and the like: ANALYZE rebuilds them
	case strings.HasPrefix(strings.ToUpper(t.sql), "CREATE VIRTUAL TABLE"):
		// Its content lives in its shadow tables, dumped as tables.
		d.w.WriteString(t.sql)
		d.w.WriteString(";\n")
		return nil
	default:
		d.w.WriteString(t.sql)
		d.w.WriteString(";\n")
	}
	return d.rows(t.name, where)
}

// rows writes one INSERT statement per row of table, each built by SQLite
// from quote() of its columns, read one at a time.
func (d *dumper) rows(table, where string) error {
	cols, explicit, err := d.columns(table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return nil
	}
	prefix := "INSERT INTO " + quoteIdent(table)
	if explicit { // generated columns take no value
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = quoteIdent(c)
		}
		prefix += "(" + strings.Join(names, ",") + ")"
	}
	prefix += " VALUES("
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = literal(quoteIdent(c))
	}
	q := "SELECT " + strings.Join(exprs, " || ',' || ") + " FROM " + quoteIdent(table) + where
	return queryRows(d.ctx, d.c, q, nil, func(v []driver.Value) error {
		d.w.WriteString(prefix)
		switch s := v[0].(type) {
		case string:
			d.w.WriteString(s)
		case []byte:
			d.w.Write(s)
		}
		_, err := d.w.WriteString(");\n")
		return err
	})
}

// columns returns the columns of table that take a value in an INSERT, and
// whether some (generated ones) do not, so that the INSERT must name them.
func (d *dumper) columns(table string) (cols []string, explicit bool, err error) {
	err = queryRows(d.ctx, d.c, "SELECT name, hidden FROM pragma_table_xinfo(?)",
		[]driver.NamedValue{{Ordinal: 1, Value: table}}, func(v []driver.Value) error {
			if h, _ := v[1].(int64); h != 0 {
				explicit = true
				return nil
			}
			cols = append(cols, textOf(v[0]))
			return nil
		})
	return cols, explicit, err
}

// literal is the SQL expression that makes col's value an SQL literal:
// quote(), except for TEXT holding a NUL byte, which quote() would cut
// short there (as sqlite3's .dump does): that is written as its bytes, a
// blob, cast back to TEXT.
func literal(col string) string {
	return "CASE WHEN typeof(" + col + ") = 'text' AND instr(" + col + ", char(0)) > 0 THEN 'CAST(' || quote(CAST(" +
		col + " AS BLOB)) || ' AS TEXT)' ELSE quote(" + col + ") END"
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
