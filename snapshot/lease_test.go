package snapshot

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// leaseFixture is a StrictFS with one covered file a and an uncovered file b.
type leaseFixture struct {
	fs   *StrictFS
	m    *LeaseManager
	a, b string
}

func newLeaseFixture(t *testing.T, idle time.Duration) *leaseFixture {
	dir := tempDir(t)
	f := &leaseFixture{fs: NewStrictFS(), m: NewLeaseManager(idle, testLogger(t)),
		a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
	for _, p := range []string{f.a, f.b} {
		if err := os.WriteFile(p, []byte(strings.Repeat("x", 1<<16)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// rename renames path to path+".moved" through Guard, as the store does.
func (f *leaseFixture) rename(path string) <-chan error {
	return done(func() error {
		return f.m.Guard(context.Background(), "rename", []string{path, path + ".moved"}, func() error {
			return f.fs.Rename(path, path+".moved")
		})
	})
}

// openLeased takes a lease on a and opens it, reading one byte.
func (f *leaseFixture) openLeased(t *testing.T, ctx context.Context) (*Lease, io.ReadCloser) {
	t.Helper()
	l, err := f.m.Acquire(ctx, "test", f.a)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Open(f.fs, f.a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return l, r
}

func assertBlocked(t *testing.T, ch <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("operation did not wait for the lease (err=%v)", err)
	case <-time.After(d):
	}
}

func assertDoneWithin(t *testing.T, ch <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("operation failed: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("operation still waiting after %v", d)
	}
}

func TestLeaseBlocksRenameUntilClose(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	l, r := f.openLeased(t, context.Background())
	ch := f.rename(f.a)
	assertBlocked(t, ch, 300*time.Millisecond)
	if f.m.Held() != 1 || f.m.Waits() != 1 {
		t.Fatalf("held=%d waits=%d", f.m.Held(), f.m.Waits())
	}
	r.Close()
	assertBlocked(t, ch, 100*time.Millisecond) // closing a file is not releasing the lease
	l.Release()
	assertDoneWithin(t, ch, time.Second)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrLeaseReleased) {
		t.Fatalf("read after release: %v", err)
	}
}

func TestLeaseReleasedOnContextCancel(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	_, r := f.openLeased(t, ctx)
	ch := f.rename(f.a)
	assertBlocked(t, ch, 300*time.Millisecond)
	cancel()
	assertDoneWithin(t, ch, time.Second)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrLeaseRevoked) {
		t.Fatalf("read after cancel: %v", err)
	}
}

func TestLeaseRevokedWhenIdle(t *testing.T) {
	idle := 300 * time.Millisecond
	f := newLeaseFixture(t, idle)
	l, r := f.openLeased(t, context.Background())
	// Reading keeps it alive past the idle timeout.
	for i := 0; i < 6; i++ {
		time.Sleep(idle / 3)
		if _, err := r.Read(make([]byte, 1)); err != nil {
			t.Fatalf("read while active: %v", err)
		}
	}
	start := time.Now()
	ch := f.rename(f.a) // StrictFS would refuse if revocation left the handle open
	assertDoneWithin(t, ch, idle+time.Second)
	if d := time.Since(start); d < idle/2 {
		t.Fatalf("rename did not wait (%v)", d)
	}
	_, err := r.Read(make([]byte, 1))
	if !errors.Is(err, ErrLeaseRevoked) || !strings.Contains(err.Error(), "idle") {
		t.Fatalf("read after idle revocation: %v", err)
	}
	if !errors.Is(l.Err(), ErrLeaseRevoked) || f.m.Held() != 0 {
		t.Fatalf("lease state %v held=%d", l.Err(), f.m.Held())
	}
}

func TestManyConcurrentLeases(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	const n = 50
	leases := make([]*Lease, n)
	var wg sync.WaitGroup
	for i := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := f.m.Acquire(context.Background(), "reader", f.a)
			if err != nil {
				t.Error(err)
				return
			}
			r, err := l.Open(f.fs, f.a)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, r)
			leases[i] = l
		}()
	}
	wg.Wait()
	if f.m.Held() != n {
		t.Fatalf("held %d", f.m.Held())
	}
	ch := f.rename(f.a)
	rand.Shuffle(n, func(i, j int) { leases[i], leases[j] = leases[j], leases[i] })
	for _, l := range leases[:n-1] {
		go l.Release()
	}
	assertBlocked(t, ch, 200*time.Millisecond)
	leases[n-1].Release()
	assertDoneWithin(t, ch, time.Second)
}

func TestRenameOfUncoveredFileNeverWaits(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	l, _ := f.openLeased(t, context.Background())
	defer l.Release()
	start := time.Now()
	assertDoneWithin(t, f.rename(f.b), time.Second)
	if d := time.Since(start); d > 100*time.Millisecond || f.m.Waits() != 0 {
		t.Fatalf("uncovered rename took %v, waits=%d", d, f.m.Waits())
	}
}

func TestLeaseCoversDirectory(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	dir := filepath.Dir(f.a)
	l, err := f.m.Acquire(context.Background(), "dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(f.fs, f.a); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(f.fs, filepath.Join(filepath.Dir(dir), "elsewhere")); err == nil {
		t.Fatal("opened an uncovered file")
	}
	ch := f.rename(f.a)
	assertBlocked(t, ch, 200*time.Millisecond)
	l.Release()
	assertDoneWithin(t, ch, time.Second)
}

func TestExclusiveBlocksNewLeases(t *testing.T) {
	f := newLeaseFixture(t, time.Minute)
	l, _ := f.openLeased(t, context.Background())
	release := make(chan struct{})
	excl := done(func() error {
		return f.m.Exclusive(context.Background(), "consolidate", []string{f.a}, func() error {
			<-release
			return nil
		})
	})
	time.Sleep(50 * time.Millisecond)
	acq := done(func() error {
		l2, err := f.m.Acquire(context.Background(), "late", f.a)
		if err == nil {
			l2.Release()
		}
		return err
	})
	assertBlocked(t, acq, 200*time.Millisecond)
	assertBlocked(t, excl, 10*time.Millisecond)
	l.Release()
	assertBlocked(t, acq, 100*time.Millisecond) // the exclusive section runs first
	close(release)
	assertDoneWithin(t, excl, time.Second)
	assertDoneWithin(t, acq, time.Second)
	// A cancelled wait gives up without running fn.
	l3, _ := f.openLeased(t, context.Background())
	defer l3.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	if err := f.m.Exclusive(ctx, "x", []string{f.a}, func() error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("exclusive with a cancelled context: err=%v ran=%v", err, ran)
	}
}
