package sqlitedb

import (
	"database/sql/driver"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// bindArgs converts a statement's parameters to driver arguments.
func bindArgs(s *sqlraftv1.Statement) ([]driver.NamedValue, error) {
	args := make([]driver.NamedValue, 0, len(s.GetParams())+len(s.GetNamedParams()))
	for i, p := range s.GetParams() {
		v, err := toDriver(p)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		args = append(args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	for i, key := range sortedKeys(s) {
		v, err := toDriver(s.GetNamedParams()[key])
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", key, err)
		}
		args = append(args, driver.NamedValue{Name: paramName(key), Ordinal: len(s.GetParams()) + i + 1, Value: v})
	}
	return args, nil
}

// sortedKeys returns the keys of the named parameters, sorted.
func sortedKeys(s *sqlraftv1.Statement) []string {
	keys := make([]string, 0, len(s.GetNamedParams()))
	for k := range s.GetNamedParams() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// paramName is a named parameter's name without the :, @ or $ prefix a
// client may have included in the key.
func paramName(key string) string {
	if key != "" && strings.ContainsRune(":@$", rune(key[0])) {
		return key[1:]
	}
	return key
}

// toDriver converts a parameter to the driver value that binds it. The
// driver binds a Go string as TEXT with exactly its bytes, valid UTF-8 or
// not, which is how a text_bytes parameter becomes TEXT.
func toDriver(v *sqlraftv1.Value) (driver.Value, error) {
	switch k := v.GetKind().(type) {
	case *sqlraftv1.Value_NullValue:
		return nil, nil
	case *sqlraftv1.Value_Integer:
		return k.Integer, nil
	case *sqlraftv1.Value_Real:
		return k.Real, nil
	case *sqlraftv1.Value_Text:
		return k.Text, nil
	case *sqlraftv1.Value_Blob:
		if k.Blob == nil {
			return []byte{}, nil
		}
		return k.Blob, nil
	case *sqlraftv1.Value_TextBytes:
		return string(k.TextBytes), nil
	default:
		return nil, fmt.Errorf("value has no kind: set one of null_value, integer, real, text, blob, text_bytes")
	}
}

// FromDriver converts a value read from SQLite to its API form. TEXT whose
// bytes are not valid UTF-8 (SQLite does not check) becomes text_bytes,
// unchanged, since a protobuf string field cannot carry it.
func FromDriver(v driver.Value) *sqlraftv1.Value {
	switch x := v.(type) {
	case nil:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
	case int64:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: x}}
	case float64:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Real{Real: x}}
	case string:
		return textValue(x)
	case []byte:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Blob{Blob: x}}
	case bool: // not produced: see neutralizeDeclTypes
		if x {
			return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: 1}}
		}
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: 0}}
	case time.Time: // not produced: see neutralizeDeclTypes
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: x.Format(time.RFC3339Nano)}}
	default:
		return textValue(fmt.Sprint(x))
	}
}

// textValue is TEXT in its API form: text when s is valid UTF-8, text_bytes
// with the same bytes when it is not.
func textValue(s string) *sqlraftv1.Value {
	if utf8.ValidString(s) {
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: s}}
	}
	return &sqlraftv1.Value{Kind: &sqlraftv1.Value_TextBytes{TextBytes: []byte(s)}}
}

// errorText is an error's message for a result's error field. SQLite can
// quote stored TEXT in a message ("bad JSON path: '…'"), and a protobuf
// string must be valid UTF-8, so bytes that are not become U+FFFD: a
// message is for people, and a read must not fail because of stored bytes.
func errorText(err error) string {
	return strings.ToValidUTF8(err.Error(), "\uFFFD")
}

// storageClass names the SQLite storage class of a driver value. A string
// is "text" whether or not its bytes are valid UTF-8.
func storageClass(v driver.Value) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "real"
	case string:
		return "text"
	case []byte:
		return "blob"
	default:
		return "null"
	}
}

// neutralizeDeclTypes stops the driver from converting values by declared
// type. go-sqlite3 turns TEXT in DATE/DATETIME/TIMESTAMP columns into
// time.Time (the zero time when it cannot parse them) and INTEGER in BOOLEAN
// columns into bool; sqlraft returns what SQLite stores, unchanged. The
// driver decides by the slice DeclTypes returns, which is its own, so
// blanking the entries there turns the conversions off for these rows. It
// returns the declared types as they were. TestDeclaredTypesKeepStoredValues
// fails if a driver upgrade changes this.
func neutralizeDeclTypes(decl []string) []string {
	orig := append([]string(nil), decl...)
	for i, t := range decl {
		switch strings.ToLower(t) {
		case "date", "datetime", "timestamp", "boolean":
			decl[i] = ""
		}
	}
	return orig
}

// approxSize bounds a value's encoded size in a result row from above (its
// payload plus the tags and lengths of Value and of its place in Row), so
// that rows budgeted against the message limit fit in a message.
func approxSize(v driver.Value) int {
	switch x := v.(type) {
	case string:
		return len(x) + 12
	case []byte:
		return len(x) + 12
	default:
		return 13
	}
}

// rowOverhead bounds a row's own encoding (its tag and length in the result).
const rowOverhead = 6
