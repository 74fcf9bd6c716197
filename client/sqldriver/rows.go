package sqldriver

import (
	"database/sql/driver"
	"io"
	"strings"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// rows iterates over a Query result, which arrived whole.
type rows struct {
	res  *sqlraftv1.QueryResult
	next int
	time []bool // columns declared DATE, DATETIME or TIMESTAMP
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
)

func newRows(res *sqlraftv1.QueryResult) *rows {
	r := &rows{res: res, time: make([]bool, len(res.GetColumns()))}
	for i, typ := range res.GetTypes() {
		if i < len(r.time) {
			switch strings.ToLower(typ) {
			case "date", "datetime", "timestamp":
				r.time[i] = true
			}
		}
	}
	return r
}

// Columns implements driver.Rows.
func (r *rows) Columns() []string { return r.res.GetColumns() }

// Close implements driver.Rows.
func (r *rows) Close() error { return nil }

// Next fills dest with the next row: NULL as nil, INTEGER as int64, REAL
// as float64, TEXT as string, BLOB as []byte; TEXT in a column declared
// DATE, DATETIME or TIMESTAMP that client.ParseTime reads as time.Time.
func (r *rows) Next(dest []driver.Value) error {
	if r.next >= len(r.res.GetRows()) {
		return io.EOF
	}
	row := r.res.GetRows()[r.next]
	r.next++
	for i, v := range row.GetValues() {
		if i >= len(dest) {
			break
		}
		dest[i] = client.GoValue(v)
		if s, ok := dest[i].(string); ok && i < len(r.time) && r.time[i] {
			if t, err := client.ParseTime(s); err == nil {
				dest[i] = t
			}
		}
	}
	return nil
}

// ColumnTypeDatabaseTypeName returns the column's declared type in upper
// case, or the storage class of the first row's value when it has none.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if types := r.res.GetTypes(); i < len(types) {
		return strings.ToUpper(types[i])
	}
	return ""
}
