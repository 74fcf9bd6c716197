package sqlitedb

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mattn/go-sqlite3"
)

// This file holds the write-ahead-log primitives the snapshot store needs.
// They rely on two properties of how sqlraft runs SQLite:
//
//   - the live database runs in WAL mode and, for incremental snapshots, with
//     automatic checkpoints off (Options.AutoCheckpoint < 0), so the main
//     database file changes only when someone checkpoints explicitly, or when
//     the last connection closes;
//   - only the Raft FSM goroutine writes, so while it is busy taking a
//     snapshot nothing appends to the WAL.

// WALPath is the path of the live database's write-ahead log.
func (db *DB) WALPath() string { return db.path + "-wal" }

// CheckpointResult reports what a checkpoint achieved.
type CheckpointResult struct {
	// Busy is set when SQLite could not finish because a reader or writer
	// held a lock past the busy timeout.
	Busy bool
	// LogFrames is the number of frames in the WAL when the checkpoint ran
	// (-1 if the database is not in WAL mode).
	LogFrames int
	// CheckpointedFrames is how many of them were copied into the database.
	CheckpointedFrames int
	// WALSize is the size of the WAL file afterwards (0 when truncated or
	// absent).
	WALSize int64
}

// Complete reports whether every frame reached the database file and the WAL
// was reset to empty, which is what an incremental snapshot chain requires.
func (r CheckpointResult) Complete() bool {
	return !r.Busy && r.LogFrames == r.CheckpointedFrames && r.WALSize == 0
}

// Checkpoint copies the WAL into the database file with
// wal_checkpoint(RESTART) and then wal_checkpoint(TRUNCATE), on the writer
// connection, waiting at most busyTimeout (per step) for readers. It must be
// called by the writing goroutine (the FSM) with no transaction open. A
// checkpoint blocked by a long reader is not an error: the result says it is
// incomplete and the caller decides (the snapshot store then takes a full
// snapshot next time).
func (db *DB) Checkpoint(busyTimeout time.Duration) (CheckpointResult, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return CheckpointResult{}, ErrClosed
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	w := db.writer
	setBusy := func(ms int64) error {
		return w.internal(func() error {
			_, err := w.Exec(fmt.Sprintf("PRAGMA busy_timeout=%d", ms), nil)
			return err
		})
	}
	if err := setBusy(busyTimeout.Milliseconds()); err != nil {
		return CheckpointResult{}, err
	}
	defer setBusy(int64(db.opts.BusyTimeoutMS)) //nolint:errcheck // restoring the default; a failure leaves a shorter wait
	var res CheckpointResult
	for _, mode := range []string{"RESTART", "TRUNCATE"} {
		r, err := walCheckpoint(w, mode)
		if err != nil {
			return r, fmt.Errorf("wal_checkpoint(%s): %w", mode, err)
		}
		res = r
		if r.Busy {
			break
		}
	}
	fi, err := os.Stat(db.WALPath())
	switch {
	case err == nil:
		res.WALSize = fi.Size()
	case !errors.Is(err, os.ErrNotExist):
		return res, err
	}
	return res, nil
}

// walCheckpoint runs one PRAGMA wal_checkpoint on c.
func walCheckpoint(c *conn, mode string) (CheckpointResult, error) {
	var res CheckpointResult
	err := c.internal(func() error {
		rows, err := c.Query("PRAGMA wal_checkpoint("+mode+")", nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		return scanCheckpoint(rows.(*sqlite3.SQLiteRows), &res)
	})
	return res, err
}

func scanCheckpoint(rows *sqlite3.SQLiteRows, res *CheckpointResult) error {
	dv := make([]driver.Value, 3)
	if err := rows.Next(dv); err != nil {
		return err
	}
	n := func(v driver.Value) int { x, _ := v.(int64); return int(x) }
	res.Busy = n(dv[0]) != 0
	res.LogFrames = n(dv[1])
	res.CheckpointedFrames = n(dv[2])
	return nil
}

// CheckpointFile opens the SQLite database at path on a private connection,
// which replays the WAL file next to it (path + "-wal") if there is one,
// checkpoints it completely into the database file and closes, leaving a
// self-contained database file. The snapshot store uses it to fold captured
// WAL files into a base database copy. No other connection may have the
// file open.
func CheckpointFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		// SQLite discards a WAL next to an empty database: refuse rather than
		// silently lose its frames.
		if _, err := os.Stat(path + "-wal"); err == nil {
			return fmt.Errorf("checkpoint %s: empty database file with a WAL", path)
		}
	}
	c, err := (&sqlite3.SQLiteDriver{}).Open("file:" + path + "?_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	sc := c.(*sqlite3.SQLiteConn)
	res, err := walCheckpoint(&conn{SQLiteConn: sc, guard: &guard{internal: true}}, "TRUNCATE")
	if cerr := sc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if res.Busy || res.LogFrames != res.CheckpointedFrames {
		return fmt.Errorf("checkpoint %s: incomplete (%d of %d frames)", path, res.CheckpointedFrames, res.LogFrames)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
