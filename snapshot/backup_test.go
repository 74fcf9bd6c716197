package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// backupTo backs the live database up into path and returns the position
// it reports.
func (e *env) backupTo(ctx context.Context, path string) (sqlitedb.Position, error) {
	var pos sqlitedb.Position
	err := e.store.BackupLive(ctx, e.db, func(r io.Reader, p sqlitedb.Position, size int64) error {
		pos = p
		if err := copyToFile(path, r); err != nil {
			return err
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != size {
			return fmt.Errorf("backup of %d bytes announced as %d (%v)", fi.Size(), size, err)
		}
		return nil
	})
	return pos, err
}

// checkIntegrity runs PRAGMA integrity_check on the database file at path.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check of %s: %q, %v", path, res, err)
	}
}

// checkLiveBackup backs up the live database (nothing writes meanwhile)
// and checks the file: intact, the live database's content at the index
// it reports, and nothing left open.
func (e *env) checkLiveBackup(what string) {
	e.t.Helper()
	t := e.t.(*testing.T)
	path := filepath.Join(tempDir(t), "backup.db")
	pos, err := e.backupTo(context.Background(), path)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if pos.Index != e.index {
		t.Fatalf("%s: backup at index %d, the database is at %d", what, pos.Index, e.index)
	}
	checkIntegrity(t, path)
	if got, want := checksumOfFile(t, path), e.checksum(); got != want {
		t.Fatalf("%s: backup holds %s, the live database %s", what, got, want)
	}
	e.checkNothingLeft(what)
}

// checkNothingLeft: the store's tmp/ is empty and no file is open.
func (e *env) checkNothingLeft(what string) {
	e.t.Helper()
	if left, _ := os.ReadDir(filepath.Join(e.dir, "snapshots", "tmp")); len(left) != 0 {
		e.t.Fatalf("%s: %d entries left in tmp/ (%s…)", what, len(left), left[0].Name())
	}
	if open := e.fs.OpenHandles(); len(open) != 0 {
		e.t.Fatalf("%s: open handles after the backup: %v", what, open)
	}
	if held := e.store.Stats().LeasesHeld; held != 0 {
		e.t.Fatalf("%s: %d leases held after the backup", what, held)
	}
}

// rawConn opens a connection to the live database of its own, outside
// sqlitedb, to put its WAL in states the node's own use rarely leaves it.
func (e *env) rawConn() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.db.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	e.t.Cleanup(func() { db.Close() })
	return db
}

// TestBackupIsTheLiveDatabase backs up the live database in every state its
// WAL can be in, and checks each file: intact, the live content at the
// index it reports. States: only WAL frames (nothing checkpointed since
// open); just after a full checkpoint (empty WAL); after a checkpoint and
// more writes (many frames per page); a commit that shrank the database
// (VACUUM); frames all copied into the database file but the WAL not yet
// restarted (read from the file alone); part of the WAL copied (a reader
// held the rest back).
func TestBackupIsTheLiveDatabase(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.fill(400)
	e.checkLiveBackup("WAL only")
	e.mustSnapshot(true)
	e.checkLiveBackup("checkpointed")
	e.updateSameRows(50, 20)
	e.write(20, 3000)
	e.checkLiveBackup("checkpoint and writes")
	e.exec("DELETE FROM u WHERE id % 3 = 0", "DELETE FROM t")
	e.mustSnapshot(false)
	raw := e.rawConn()
	if _, err := raw.Exec("VACUUM"); err != nil {
		t.Fatal(err)
	}
	e.checkLiveBackup("vacuum")

	if _, err := raw.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	e.checkLiveBackup("WAL copied, not restarted")
	e.updateSameRows(10, 20) // restarts the WAL
	e.checkLiveBackup("WAL restarted")

	reader, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow("SELECT count(*) FROM u").Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.updateSameRows(30, 50)
	other := e.rawConn()
	if _, err := other.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil { // stops at the reader
		t.Fatal(err)
	}
	reader.Rollback()
	e.checkLiveBackup("WAL partly copied")

	// A WAL of more frames than the wal-index's first two blocks index
	// (4062, then 4096 each), part of them copied.
	e.mustSnapshot(true)
	e.write(100, 100_000)
	reader, err = raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	e.write(100, 100_000)
	e.updateSameRows(30, 50)
	if _, err := other.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	reader.Rollback()
	e.write(100, 100_000)
	e.write(100, 100_000) // about 9,800 frames: three blocks
	e.checkLiveBackup("large WAL partly copied")
	e.checkReadSizes()
}

// checkReadSizes reads the image of the live database in reads of sizes
// that cut pages (a backup's own reads never do), and compares it with a
// backup's file.
func (e *env) checkReadSizes() {
	e.t.Helper()
	t := e.t.(*testing.T)
	path := filepath.Join(tempDir(t), "backup.db")
	if _, err := e.backupTo(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1000, 4096 + 24, 3 << 20} {
		lease, err := e.store.backup.leases.Acquire(context.Background(), "test", livePaths(e.db.Path())...)
		if err != nil {
			t.Fatal(err)
		}
		pin, err := e.db.PinRead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		img, err := e.store.backup.compose(lease, e.db, pin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(struct{ io.Reader }{readInSize{img, size}})
		img.Close()
		pin.Close()
		lease.Release()
		if err != nil || string(got) != string(want) {
			t.Fatalf("image read in %d-byte reads: %d bytes (%v), differs from the backup's %d", size, len(got), err, len(want))
		}
	}
}

// readInSize reads r in reads of at most size bytes.
type readInSize struct {
	r    io.Reader
	size int
}

func (r readInSize) Read(p []byte) (int, error) { return r.r.Read(p[:min(len(p), r.size)]) }

// TestBackupDuringWritesAndSnapshots backs up over and over while another
// goroutine (the FSM's, as it were) writes, takes snapshots (whose
// checkpoints run while backups read) and consolidates: every backup
// passes integrity_check and holds the database at the index it reports.
func TestBackupDuringWritesAndSnapshots(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: 3, CheckpointBusyTimeout: 50 * time.Millisecond})
	e.fill(300)
	var (
		mu   sync.Mutex
		sums = map[uint64]string{e.index: e.checksum()}
		stop = make(chan struct{})
	)
	type result struct {
		index uint64
		path  string
	}
	var results []result
	dir := tempDir(t)
	backups := done(func() error {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return nil
			default:
			}
			path := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
			pos, err := e.backupTo(context.Background(), path)
			if err != nil {
				return err
			}
			results = append(results, result{pos.Index, path})
		}
	})
	for i := 0; i < 180; i++ { // one entry each, its checksum recorded before the next
		switch i % 3 {
		case 0:
			e.exec(fmt.Sprintf("UPDATE u SET n = n + 1, v = randomblob(1000) WHERE id %% 50 = %d", i%50))
		case 1:
			e.write(10, 2000)
		case 2:
			e.exec(fmt.Sprintf("DELETE FROM t WHERE id %% 7 = %d", i%7))
		}
		mu.Lock()
		sums[e.index] = e.checksum()
		mu.Unlock()
		if i%30 == 29 {
			e.mustSnapshot(i%60 == 59)
		}
		if i%75 == 74 {
			if err := e.store.Consolidate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	if err := <-backups; err != nil {
		t.Fatal(err)
	}
	if len(results) < 2 {
		t.Fatalf("only %d backups ran", len(results))
	}
	for _, r := range results {
		checkIntegrity(t, r.path)
		if got := checksumOfFile(t, r.path); got != sums[r.index] {
			t.Fatalf("backup at index %d holds %s, want %s", r.index, got, sums[r.index])
		}
	}
	t.Logf("%d backups, each the database at its index", len(results))
	e.checkNothingLeft("backups")
}

// startStalledBackup starts a backup of the live database whose send reads
// one chunk and then waits for release before reading the rest into path;
// it returns once that chunk was read, with the channel Backup's error
// arrives on and the position it reported.
func (e *env) startStalledBackup(ctx context.Context, release <-chan struct{}, path string) (<-chan error, *sqlitedb.Position) {
	e.t.Helper()
	started := make(chan struct{})
	var pos sqlitedb.Position
	errc := done(func() error {
		return e.store.BackupLive(ctx, e.db, func(r io.Reader, p sqlitedb.Position, _ int64) error {
			pos = p
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyN(f, r, BackupChunk)
			close(started)
			if err != nil {
				return err
			}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err = io.Copy(f, r)
			return err
		})
	})
	select {
	case <-started:
	case err := <-errc:
		e.t.Fatalf("backup ended before reading: %v", err)
	}
	return errc, &pos
}

// installStream opens the head snapshot's stream, for an Install.
func (e *env) installStream() io.ReadCloser {
	e.t.Helper()
	head, _ := e.store.Latest()
	_, rc, err := e.store.Open(head.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return rc
}

// TestInstallWaitsForABackup: an install, which replaces the live files,
// waits for a backup reading them (on StrictFS, which refuses to rename an
// open file as Windows does); the backup completes with the database as
// it was when it started, then the install runs. A snapshot taken while
// the backup reads does not wait and is stored; SQLite keeps the WAL the
// backup reads (the checkpoint is incomplete, so the next snapshot is
// full).
func TestInstallWaitsForABackup(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1, CheckpointBusyTimeout: 50 * time.Millisecond})
	e.write(300, 100_000) // 30 MB: more than the backup reads ahead
	e.mustSnapshot(true)
	e.write(40, 100_000)
	want, wantIndex := e.checksum(), e.index
	path := filepath.Join(tempDir(t), "backup.db")
	release := make(chan struct{})
	backup, pos := e.startStalledBackup(context.Background(), release, path)
	if held := e.store.Stats().LeasesHeld; held != 1 {
		t.Fatalf("%d leases held during the backup, want 1", held)
	}
	e.updateSameRowsOfT(20)
	in := e.mustSnapshot(false)
	if next := e.store.Stats().NextFull; next == "" {
		t.Fatalf("snapshot %s during the backup: the next is not full", in.ID)
	}
	waits := e.store.Stats().LeaseWaits
	rc := e.installStream()
	install := done(func() error { return e.store.Install(e.db, rc) })
	if !waitFor(10*time.Second, func() bool { return e.store.Stats().LeaseWaits > waits }) {
		t.Fatal("install did not wait for the backup's lease")
	}
	select {
	case err := <-install:
		t.Fatalf("install ran under the backup's lease: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-backup; err != nil {
		t.Fatal(err)
	}
	if err := <-install; err != nil {
		t.Fatalf("install after the backup: %v", err)
	}
	checkIntegrity(t, path)
	if got := checksumOfFile(t, path); got != want || pos.Index != wantIndex {
		t.Fatalf("backup at index %d holds %s, want index %d with %s", pos.Index, got, wantIndex, want)
	}
	e.checkNothingLeft("backup, then install")
}

// updateSameRowsOfT rewrites the first n rows of table t, one entry.
func (e *env) updateSameRowsOfT(n int) {
	e.exec(fmt.Sprintf("UPDATE t SET v = randomblob(1000) WHERE id <= %d", n))
}

// TestBackupHoldsItsLeaseUntilCancelled: cancelling a backup (the client
// went away) ends it with the context's error, closes its files and ends
// its read, so the install waiting for it runs.
func TestBackupHoldsItsLeaseUntilCancelled(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(300, 100_000)
	e.mustSnapshot(true)
	e.write(10, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backup, _ := e.startStalledBackup(ctx, nil, filepath.Join(tempDir(t), "backup.db"))
	rc := e.installStream()
	install := done(func() error { return e.store.Install(e.db, rc) })
	select {
	case err := <-install:
		t.Fatalf("install ran under the backup's lease: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	if err := <-backup; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	if err := <-install; err != nil {
		t.Fatalf("install after the cancelled backup: %v", err)
	}
	e.checkNothingLeft("cancelled backup")
}

// TestBackupOfAStalledClientLosesItsLease: a client that stops reading
// loses the backup's lease after the idle timeout, so an install is not
// held up for good; the stalled backup then fails with ErrLeaseRevoked.
func TestBackupOfAStalledClientLosesItsLease(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1, LeaseIdleTimeout: 200 * time.Millisecond})
	e.write(300, 100_000)
	e.mustSnapshot(true)
	release := make(chan struct{})
	backup, _ := e.startStalledBackup(context.Background(), release, filepath.Join(tempDir(t), "backup.db"))
	if err := e.store.Install(e.db, e.installStream()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-backup; !errors.Is(err, ErrLeaseRevoked) {
		t.Fatalf("backup whose client stalled: %v", err)
	}
	e.checkNothingLeft("stalled backup")
}

// TestBackupEndsWhenTheDatabaseCloses: closing the database stops a backup
// in progress (its read would otherwise keep the files open) and does not
// wait for its client.
func TestBackupEndsWhenTheDatabaseCloses(t *testing.T) {
	e := newEnv(t, Options{ConsolidateAfter: -1})
	e.write(300, 100_000)
	release := make(chan struct{})
	backup, _ := e.startStalledBackup(context.Background(), release, filepath.Join(tempDir(t), "backup.db"))
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-backup; !errors.Is(err, ErrLeaseRevoked) {
		t.Fatalf("backup of a closed database: %v", err)
	}
	e.checkNothingLeft("closed database")
}

// backupAlloc backs up e's live database to io.Discard and returns the
// bytes the process allocated meanwhile.
func (e *env) backupAlloc() (size int64, alloc uint64) {
	e.t.Helper()
	buf := make([]byte, BackupChunk)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := e.store.BackupLive(context.Background(), e.db, func(r io.Reader, _ sqlitedb.Position, n int64) error {
		size = n
		_, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf)
		return err
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		e.t.Fatal(err)
	}
	return size, after.TotalAlloc - before.TotalAlloc
}

// TestBackupMemoryDoesNotGrowWithTheDatabase: backing up a database four
// times larger (about 16 and 64 MB, checkpointed, then the same writes in
// the WAL) allocates no more: a few read-ahead buffers and the WAL's
// index, not the database.
func TestBackupMemoryDoesNotGrowWithTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 16 and 64 MB databases")
	}
	var allocs []uint64
	for _, mb := range []int{16, 64} {
		e := newEnv(t, Options{ConsolidateAfter: -1})
		e.grow(mb)
		e.mustSnapshot(true)
		e.write(50, 3000)
		size, alloc := e.backupAlloc()
		t.Logf("backup of %d MB: %d KiB allocated", size>>20, alloc>>10)
		allocs = append(allocs, alloc)
	}
	const slack = 1 << 20
	if allocs[1] > allocs[0]+slack || allocs[1] > 32<<20 {
		t.Fatalf("a 64 MB backup allocated %d bytes, a 16 MB one %d", allocs[1], allocs[0])
	}
}
