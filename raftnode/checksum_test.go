package raftnode_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
	"github.com/sqlraft/sqlraft/raftnode"
)

// checksumEnv is a real database written as the FSM writes it, one row per
// index, with the checksum of every index it reached.
type checksumEnv struct {
	t     *testing.T
	db    *sqlitedb.DB
	mu    sync.Mutex
	index uint64
	sums  map[uint64]string
}

func newChecksumEnv(t *testing.T) *checksumEnv {
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "db.sqlite"), sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &checksumEnv{t: t, db: db, sums: map[uint64]string{}}
	e.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	return e
}

// write applies sql at the next index and records the checksum there.
func (e *checksumEnv) write(sql string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	tx, err := e.db.Begin()
	if err != nil {
		e.t.Fatal(err)
	}
	if r := tx.Run(&sqlraftv1.Statement{Sql: sql}, false); r.GetExecute().GetError() != "" {
		e.t.Fatal(r.GetExecute().GetError())
	}
	if err := tx.SetApplied(sqlitedb.Position{Index: e.index + 1, Term: 1}); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
	e.index++
	pos, sum, err := e.db.Checksum(context.Background())
	if err != nil || pos.Index != e.index {
		e.t.Fatalf("checksum at %d: %v (index %d)", e.index, err, pos.Index)
	}
	e.sums[e.index] = sum
}

func (e *checksumEnv) applied() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.index
}

func (e *checksumEnv) sumAt(i uint64) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sums[i]
}

func TestChecksumConcurrentCallersAtOneIndexComputeOnce(t *testing.T) {
	e := newChecksumEnv(t)
	e.write("INSERT INTO t(v) VALUES('a')")
	cache := raftnode.NewChecksumCache(e.db.Checksum, e.applied, time.Hour)
	const callers = 16
	sums := make([]raftnode.Checksum, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = cache.Get(context.Background())
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if sums[i].Index != e.index || sums[i].SHA256 != e.sumAt(e.index) {
			t.Fatalf("caller %d got %d/%s, want %d/%s", i, sums[i].Index, sums[i].SHA256, e.index, e.sumAt(e.index))
		}
	}
	if n := cache.Computations(); n != 1 {
		t.Fatalf("%d callers at one index computed %d checksums, want 1", callers, n)
	}
}

func TestChecksumWithinIntervalReturnsCachedSumWithItsOwnIndex(t *testing.T) {
	e := newChecksumEnv(t)
	cache := raftnode.NewChecksumCache(e.db.Checksum, e.applied, time.Hour)
	first, err := cache.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.write("INSERT INTO t(v) VALUES('b')")
	again, err := cache.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again != first || again.Index != e.index-1 || again.SHA256 != e.sumAt(e.index-1) {
		t.Fatalf("within the interval got %+v, want the first result %+v", again, first)
	}
	if n := cache.Computations(); n != 1 {
		t.Fatalf("computed %d checksums within one interval, want 1", n)
	}
}

func TestChecksumCatchesUpAfterInterval(t *testing.T) {
	e := newChecksumEnv(t)
	cache := raftnode.NewChecksumCache(e.db.Checksum, e.applied, 20*time.Millisecond)
	if _, err := cache.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.write("INSERT INTO t(v) VALUES('c')")
	deadline := time.Now().Add(30 * time.Second)
	for {
		sum, err := cache.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Index == e.index {
			if sum.SHA256 != e.sumAt(e.index) {
				t.Fatalf("sum at %d is %s, want %s", sum.Index, sum.SHA256, e.sumAt(e.index))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at index %d, database at %d", sum.Index, e.index)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Whatever the timing, every sum handed out is the database's sum at the
// index it comes with.
func TestChecksumNeverPairsASumWithAnotherIndex(t *testing.T) {
	e := newChecksumEnv(t)
	cache := raftnode.NewChecksumCache(e.db.Checksum, e.applied, time.Nanosecond)
	stop := make(chan struct{})
	var got sync.Map // index -> []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sum, err := cache.Get(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				got.Store(fmt.Sprintf("%d/%s", sum.Index, sum.SHA256), sum)
			}
		}()
	}
	for i := range 200 {
		e.write(fmt.Sprintf("INSERT INTO t(v) VALUES('%d')", i))
	}
	close(stop)
	wg.Wait()
	seen := 0
	got.Range(func(_, v any) bool {
		seen++
		sum := v.(raftnode.Checksum)
		if want := e.sumAt(sum.Index); sum.SHA256 != want {
			t.Errorf("index %d handed out with %s, the database's sum there is %s", sum.Index, sum.SHA256, want)
		}
		return true
	})
	if seen == 0 {
		t.Fatal("no checksum handed out")
	}
}
