package client

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// TimeFormat is how ValueOf writes a time.Time: as TEXT in UTC, with
// nanoseconds and the zone, e.g. "2026-11-25 01:02:03.456+00:00", a form
// SQLite's date and time functions read and whose text order is time order.
const TimeFormat = "2006-01-02 15:04:05.999999999-07:00"

// timeLayouts are the forms ParseTime accepts, most specific first.
var timeLayouts = []string{
	TimeFormat,
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ParseTime reads a time written by ValueOf (TimeFormat), or in one of
// the forms SQLite's date functions produce ("YYYY-MM-DD HH:MM:SS[.SSS]",
// "YYYY-MM-DD"), or RFC 3339. Times without a zone are UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("client: %q is not a time (want e.g. %q)", s, TimeFormat)
}

// UnsupportedTypeError is ValueOf's error for a Go type it cannot send.
type UnsupportedTypeError struct{ Value any }

// Error implements error.
func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("client: cannot send a %T as a SQL value (use nil, an integer, a float, string, []byte, bool or time.Time)", e.Value)
}

// ValueOf converts a Go value to a sqlraft Value:
//
//	nil                        NULL
//	int, int8 … int64          INTEGER
//	uint, uint8 … uint64       INTEGER (error above math.MaxInt64)
//	float32, float64           REAL
//	string                     TEXT (as text_bytes when not valid UTF-8)
//	[]byte                     BLOB (nil: NULL)
//	bool                       INTEGER 1 or 0 (SQLite has no boolean type)
//	time.Time                  TEXT in TimeFormat, in UTC
//	*sqlraftv1.Value           itself
//
// Any other type is an *UnsupportedTypeError.
func ValueOf(v any) (*sqlraftv1.Value, error) {
	switch x := v.(type) {
	case nil:
		return Null(), nil
	case *sqlraftv1.Value:
		return x, nil
	case int:
		return Integer(int64(x)), nil
	case int8:
		return Integer(int64(x)), nil
	case int16:
		return Integer(int64(x)), nil
	case int32:
		return Integer(int64(x)), nil
	case int64:
		return Integer(x), nil
	case uint:
		return unsigned(uint64(x))
	case uint8:
		return Integer(int64(x)), nil
	case uint16:
		return Integer(int64(x)), nil
	case uint32:
		return Integer(int64(x)), nil
	case uint64:
		return unsigned(x)
	case float32:
		return Real(float64(x)), nil
	case float64:
		return Real(x), nil
	case string:
		return Text(x), nil
	case []byte:
		if x == nil {
			return Null(), nil
		}
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: x}}, nil
	case bool:
		if x {
			return Integer(1), nil
		}
		return Integer(0), nil
	case time.Time:
		return Text(x.UTC().Format(TimeFormat)), nil
	}
	return nil, &UnsupportedTypeError{Value: v}
}

func unsigned(u uint64) (*sqlraftv1.Value, error) {
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("client: %d does not fit SQLite's 64-bit signed INTEGER", u)
	}
	return Integer(int64(u)), nil
}

// Null returns a NULL value.
func Null() *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
}

// Integer returns an INTEGER value.
func Integer(i int64) *sqlraftv1.Value {
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: i}}
}

// Real returns a REAL value.
func Real(f float64) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Real{Real: f}} }

// Text returns a TEXT value: text when s is valid UTF-8, else text_bytes
// (a protobuf string must be valid UTF-8), so any Go string round-trips.
func Text(s string) *sqlraftv1.Value {
	if !utf8.ValidString(s) {
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: []byte(s)}}
	}
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}}
}

// Blob returns a BLOB value.
func Blob(b []byte) *sqlraftv1.Value { return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: b}} }

// Params converts positional parameters with ValueOf.
func Params(args ...any) ([]*sqlraftv1.Value, error) {
	out := make([]*sqlraftv1.Value, len(args))
	for i, a := range args {
		v, err := ValueOf(a)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

// NamedParams converts named parameters (keys without the :, @ or $
// prefix) with ValueOf.
func NamedParams(args map[string]any) (map[string]*sqlraftv1.Value, error) {
	out := make(map[string]*sqlraftv1.Value, len(args))
	for k, a := range args {
		v, err := ValueOf(a)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// NewStatement returns a statement with positional parameters (for ?,
// ?NNN) converted by ValueOf.
func NewStatement(sql string, args ...any) (*sqlraftv1.Statement, error) {
	params, err := Params(args...)
	if err != nil {
		return nil, err
	}
	return &sqlraftv1.Statement{Sql: sql, Params: params}, nil
}

// GoValue converts a sqlraft Value back to Go: NULL → nil, INTEGER →
// int64, REAL → float64, TEXT → string (text and text_bytes alike), BLOB
// → []byte. A time written by ValueOf comes back as its TEXT; ParseTime
// reads it. A nil or empty Value is nil.
func GoValue(v *sqlraftv1.Value) any {
	switch k := v.GetKind().(type) {
	case *sqlraftv1.Value_Integer:
		return k.Integer
	case *sqlraftv1.Value_Real:
		return k.Real
	case *sqlraftv1.Value_Text:
		return k.Text
	case *sqlraftv1.Value_TextBytes:
		return string(k.TextBytes)
	case *sqlraftv1.Value_Blob:
		if k.Blob == nil {
			return []byte{}
		}
		return k.Blob
	}
	return nil
}

// RowValues converts a result row with GoValue.
func RowValues(row *sqlraftv1.Row) []any {
	out := make([]any, len(row.GetValues()))
	for i, v := range row.GetValues() {
		out[i] = GoValue(v)
	}
	return out
}
