package snapshot

import (
	"errors"
	"testing"
)

// TestLiveSwapGoesThroughTheFS: the rename that replaces the live database
// during an install is made through the store's FS, so StrictFS (Windows
// semantics) refuses it while a handle the store opened still holds the
// live file. The failed install leaves the database as it was, and the
// same install succeeds once the handle is closed.
func TestLiveSwapGoesThroughTheFS(t *testing.T) {
	leader, follower := newEnv(t, Options{}), newEnv(t, Options{})
	leader.write(5, 100)
	head := leader.mustSnapshot(true)
	before := follower.checksum()

	held, err := follower.fs.Open(follower.db.Path()) // as a full capture copying it would
	if err != nil {
		t.Fatal(err)
	}
	_, rc, err := leader.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	err = follower.store.Install(follower.db, rc)
	if !errors.Is(err, ErrSharingViolation) {
		t.Fatalf("install over a held live file: %v, want a sharing violation", err)
	}
	if got := follower.checksum(); got != before {
		t.Fatal("a refused swap changed the database")
	}
	held.Close()

	_, rc, err = leader.store.Open(head.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.store.Install(follower.db, rc); err != nil {
		t.Fatal(err)
	}
	if follower.checksum() != leader.sums[head.Index] {
		t.Fatal("follower differs from the leader's snapshot")
	}
}
