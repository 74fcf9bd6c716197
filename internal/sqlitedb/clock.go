package sqlitedb

import (
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Clock makes the writer connection deterministic. Every replica applies the
// same log entry with the same wall-clock time and random seed (chosen once,
// by the leader that proposed the entry), so SQLite's non-deterministic
// functions are replaced on the writer connection by versions that read them:
//
//   - random() and randomblob(N) draw from a PRNG seeded per entry;
//   - current_timestamp, current_date and current_time (the functions SQLite
//     calls for the CURRENT_* keywords, including in column DEFAULTs) return
//     the entry's time;
//   - date(), time(), datetime(), julianday(), unixepoch(), strftime() and
//     timediff() replace a 'now' argument (or a missing time value) by the
//     entry's time and delegate to SQLite's own implementation on a private
//     in-memory connection, so every other behaviour is SQLite's.
//
// Overriding the functions, rather than rewriting SQL text, also covers
// triggers, views and DEFAULT expressions stored in the schema.
type Clock struct {
	now time.Time
	rng *rand.Rand

	mu   sync.Mutex // guards calc, which the writer's callbacks share
	calc *sqlite3.SQLiteConn
}

func newClock() *Clock {
	return &Clock{now: time.Now().UTC(), rng: rand.New(rand.NewPCG(1, 2))}
}

// Set fixes the time and random seed for the next statements on the writer.
func (c *Clock) Set(now time.Time, seed uint64) {
	c.now = now.UTC()
	c.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// dateFuncs are SQLite's date and time functions; the value is the index of
// the first argument that is a time value (strftime's first is the format).
var dateFuncs = map[string]int{
	"date": 0, "time": 0, "datetime": 0, "julianday": 0, "unixepoch": 0, "strftime": 1, "timediff": 0,
}

func (c *Clock) register(conn *sqlite3.SQLiteConn) error {
	fns := map[string]any{
		"random":            c.random,
		"randomblob":        c.randomBlob,
		"current_timestamp": func() string { return c.now.Format("2006-01-02 15:04:05") },
		"current_date":      func() string { return c.now.Format("2006-01-02") },
		"current_time":      func() string { return c.now.Format("15:04:05") },
	}
	for name, fn := range fns {
		if err := conn.RegisterFunc(name, fn, false); err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
	}
	for name, first := range dateFuncs {
		if err := conn.RegisterFunc(name, c.dateFunc(name, first), false); err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
	}
	return nil
}

func (c *Clock) random() int64 { return int64(c.rng.Uint64()) }

func (c *Clock) randomBlob(n any) []byte {
	size := int64(1)
	switch v := n.(type) {
	case int64:
		size = v
	case float64:
		size = int64(v)
	case string:
		size, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	size = min(max(size, 1), 1<<30)
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(c.rng.Uint32())
	}
	return b
}

// dateFunc returns the override of SQLite date function name.
func (c *Clock) dateFunc(name string, first int) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		nowText := c.now.Format("2006-01-02 15:04:05.000")
		if len(args) == first {
			args = append(args, nowText)
		}
		for i := first; i < len(args); i++ {
			if s, ok := args[i].(string); ok && strings.EqualFold(strings.TrimSpace(s), "now") {
				args[i] = nowText
			}
		}
		return c.delegate(name, args)
	}
}

// delegate evaluates SQLite's built-in function name on the private
// in-memory connection.
func (c *Clock) delegate(name string, args []any) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calc == nil {
		conn, err := (&sqlite3.SQLiteDriver{}).Open(":memory:")
		if err != nil {
			return nil, err
		}
		c.calc = conn.(*sqlite3.SQLiteConn)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		vals[i] = a
	}
	rows, err := c.calc.Query("SELECT "+name+"("+marks+")", vals)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return nil, err
	}
	return dest[0], nil
}

// close releases the private connection.
func (c *Clock) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calc == nil {
		return nil
	}
	err := c.calc.Close()
	c.calc = nil
	return err
}
