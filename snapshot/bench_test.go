package snapshot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// benchLargeMB is the "large" database of the benchmarks: small by default
// so CI stays fast; SNAPSHOT_BENCH_LARGE_MB=1024 for the 1 GB figures.
func benchLargeMB() int {
	if n, err := strconv.Atoi(os.Getenv("SNAPSHOT_BENCH_LARGE_MB")); err == nil && n > 0 {
		return n
	}
	return 64
}

// grow adds about mb megabytes of random rows to e's database, in
// transactions of 16 MB, checkpointing after each so the WAL stays small.
func (e *env) grow(mb int) {
	e.t.Helper()
	const rowBytes, rowsPerTx = 4000, 4000
	for done := 0; done < mb<<20; done += rowBytes * rowsPerTx {
		tx, err := e.db.Begin()
		if err != nil {
			e.t.Fatal(err)
		}
		e.index++
		sql := fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
			INSERT INTO big(v) SELECT randomblob(%d) FROM c`, rowsPerTx, rowBytes)
		for _, s := range []string{"CREATE TABLE IF NOT EXISTS big(id INTEGER PRIMARY KEY, v BLOB)", sql} {
			if msg := tx.Run(&sqlraftv1.Statement{Sql: s}, false).GetExecute().GetError(); msg != "" {
				e.t.Fatal(msg)
			}
		}
		if err := tx.SetApplied(sqlitedb.Position{Index: e.index, Term: 1}); err != nil {
			e.t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.db.Checkpoint(time.Second); err != nil {
			e.t.Fatal(err)
		}
	}
}

// BenchmarkIncrementalSnapshot times Capture+Persist after a fixed write
// volume (50 rows of 2 KB) on a 10 MB and a large database: the cost must
// not depend on the database's size.
func BenchmarkIncrementalSnapshot(b *testing.B) {
	for _, mb := range []int{10, benchLargeMB()} {
		b.Run(fmt.Sprintf("db=%dMB", mb), func(b *testing.B) {
			e := newEnv(b, Options{ConsolidateAfter: -1, Logger: nullLogger()})
			e.grow(mb)
			e.noSums = true
			e.mustSnapshot(true)
			// Flush the setup's dirty pages, or the first checkpoints' fsync
			// pays for writing back the whole new file.
			if f, err := os.OpenFile(e.db.Path(), os.O_RDWR, 0); err == nil {
				f.Sync()
				f.Close()
			}
			var walBytes int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e.write(50, 2000)
				b.StartTimer()
				in := e.mustSnapshot(false)
				if in.Kind != KindIncremental {
					b.Fatalf("snapshot %d is %v", i, in.Kind)
				}
				walBytes += in.Size
			}
			b.ReportMetric(float64(walBytes)/float64(b.N), "wal-bytes/op")
		})
	}
}

// BenchmarkInstall streams a full snapshot of the large database the way a
// follower receives it (leader Open -> follower sink -> follower Open ->
// Restore to a complete file), and BenchmarkRestore only the last leg;
// BenchmarkCopyFile copies the same database file on the same disk.
func BenchmarkInstall(b *testing.B) {
	leader, id := largeSnapshot(b)
	follower := newEnv(b, Options{Logger: nullLogger()})
	b.SetBytes(leader.db.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		meta, rc, err := leader.store.Open(id)
		if err != nil {
			b.Fatal(err)
		}
		sink, err := follower.store.Create(meta.Version, meta.Index, meta.Term, raft.Configuration{}, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(sink, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		if err := sink.Close(); err != nil {
			b.Fatal(err)
		}
		_, rc, err = follower.store.Open(sink.ID())
		if err != nil {
			b.Fatal(err)
		}
		path, err := Restore(rc, follower.dir)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
	}
}

// BenchmarkRestore turns a stored snapshot into a database file.
func BenchmarkRestore(b *testing.B) {
	e, id := largeSnapshot(b)
	b.SetBytes(e.db.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, rc, err := e.store.Open(id)
		if err != nil {
			b.Fatal(err)
		}
		path, err := Restore(rc, e.dir)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
	}
}

// BenchmarkCopyFile is the baseline: copy the database file and fsync.
func BenchmarkCopyFile(b *testing.B) {
	e, _ := largeSnapshot(b)
	b.SetBytes(e.db.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in, err := os.Open(e.db.Path())
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(e.dir, "copy.db")
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(out, in, make([]byte, 1<<20)); err != nil {
			b.Fatal(err)
		}
		out.Sync()
		out.Close()
		in.Close()
		os.Remove(dst)
	}
}

// largeSnapshot builds the large database and a full snapshot of it, whose
// WAL folded in so the stream is one database file.
func largeSnapshot(b *testing.B) (*env, string) {
	e := newEnv(b, Options{ConsolidateAfter: -1, Logger: nullLogger()})
	e.grow(benchLargeMB())
	e.noSums = true
	return e, e.mustSnapshot(true).ID
}

// BenchmarkBackup reads a backup of the large live database (checkpointed,
// then a few writes in the WAL) to io.Discard, and to a file with fsync as
// `sqlraft backup` does, reporting what it allocates per backup, which
// does not depend on the database's size.
func BenchmarkBackup(b *testing.B) {
	e, _ := largeSnapshot(b)
	e.buildChain(2)
	e.write(20, 3000)
	for _, toFile := range []bool{false, true} {
		b.Run(fmt.Sprintf("file=%v", toFile), func(b *testing.B) {
			b.SetBytes(e.db.Size())
			b.ReportAllocs()
			buf := make([]byte, BackupChunk)
			for b.Loop() {
				err := e.store.BackupLive(b.Context(), e.db, func(r io.Reader, _ sqlitedb.Position, _ int64) error {
					if !toFile {
						_, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf)
						return err
					}
					dst := filepath.Join(e.dir, "backup.db")
					defer os.Remove(dst)
					out, err := os.Create(dst)
					if err != nil {
						return err
					}
					defer out.Close()
					if _, err := io.CopyBuffer(struct{ io.Writer }{out}, r, buf); err != nil {
						return err
					}
					return out.Sync()
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
