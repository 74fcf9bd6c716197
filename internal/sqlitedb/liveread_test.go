package sqlitedb

import (
	"context"
	"testing"
	"time"
)

// TestPinReadSeesTheWAL: a pinned read reports the position and the WAL as
// they were when it began (frames, none backfilled; after a checkpoint,
// none), its frames' page numbers match the WAL's own frame headers' count,
// writes go on while it is open, and it takes a stream slot until it is
// closed (twice, harmlessly).
func TestPinReadSeesTheWAL(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"), stmt("INSERT INTO t VALUES(randomblob(10000))"))
	r, err := db.PinRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Position.Index != 1 || r.WALFrames == 0 || r.Backfilled != 0 || r.PageSize != 4096 || r.Pages < 3 {
		t.Fatalf("pinned read: %+v", r)
	}
	var frames int64
	if err := r.FramePages(func(f int64, page uint32) {
		frames++
		if f != frames || page == 0 || int64(page) > r.Pages {
			t.Errorf("frame %d: page %d", f, page)
		}
	}); err != nil || frames != r.WALFrames {
		t.Fatalf("%d frame pages of %d (%v)", frames, r.WALFrames, err)
	}
	if db.Streams() != 1 {
		t.Fatalf("%d streams during the pinned read", db.Streams())
	}
	write(t, db, 2, time.Now(), 1, stmt("INSERT INTO t VALUES(1)")) // writes go on
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil || db.Streams() != 0 {
		t.Fatalf("second Close: %v, %d streams", err, db.Streams())
	}
	if res, err := db.Checkpoint(time.Second); err != nil || !res.Complete() {
		t.Fatalf("checkpoint after the read: %+v, %v", res, err)
	}
	r, err = db.PinRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Position.Index != 2 || r.WALFrames != r.Backfilled {
		t.Fatalf("pinned read after a checkpoint: %+v", r)
	}
}

// TestCloseStopsAPinnedRead: closing the database ends a pinned read
// (Done) rather than waiting for it.
func TestCloseStopsAPinnedRead(t *testing.T) {
	db := openWALTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(x)"))
	r, err := db.PinRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-r.Done()
		r.Close()
	}()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("the pinned read was not stopped")
	}
}
