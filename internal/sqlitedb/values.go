package sqlitedb

import (
	"database/sql/driver"
	"fmt"
	"sort"
	"strings"
	"time"

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
	default:
		return nil, fmt.Errorf("value has no kind: set one of null_value, integer, real, text, blob")
	}
}

// FromDriver converts a value read from SQLite to its API form.
func FromDriver(v driver.Value) *sqlraftv1.Value {
	switch x := v.(type) {
	case nil:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_NullValue{NullValue: structpb.NullValue_NULL_VALUE}}
	case int64:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Integer{Integer: x}}
	case float64:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Real{Real: x}}
	case string:
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: x}}
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
		return &sqlraftv1.Value{Kind: &sqlraftv1.Value_Text{Text: fmt.Sprint(x)}}
	}
}

// storageClass names the SQLite storage class of a driver value.
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

// approxSize estimates a value's encoded size, for result size limits.
func approxSize(v driver.Value) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case []byte:
		return len(x) + 2
	default:
		return 9
	}
}
