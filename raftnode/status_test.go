package raftnode

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestStatusStorageStatsDoNotReadStorageOnEveryCall(t *testing.T) {
	var stats, firsts atomic.Int64
	s := newStorageStats(func() int64 { stats.Add(1); return 4096 },
		func() (uint64, error) { firsts.Add(1); return 7, nil }, time.Hour)
	for range 1000 {
		if size, first := s.get(); size != 4096 || first != 7 {
			t.Fatalf("got size %d first %d, want 4096 and 7", size, first)
		}
	}
	if stats.Load() != 1 || firsts.Load() != 1 {
		t.Fatalf("1000 calls read the db size %d times and the first index %d times, want once each (at start)",
			stats.Load(), firsts.Load())
	}
}

func TestStatusStorageStatsRefreshInTheBackground(t *testing.T) {
	size := atomic.Int64{}
	size.Store(1)
	release := make(chan struct{})
	var blocked atomic.Bool
	s := newStorageStats(func() int64 {
		if blocked.Load() {
			<-release // a disk that hangs
		}
		return size.Load()
	}, func() (uint64, error) { return 1, nil }, time.Nanosecond)
	blocked.Store(true)
	size.Store(2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			s.get() // must not wait for the hung refresh
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("get waited for a refresh")
	}
	if got, _ := s.get(); got != 1 {
		t.Fatalf("size %d before the refresh finished, want the cached 1", got)
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := s.get(); got == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refreshed size never showed up")
		}
		time.Sleep(time.Millisecond)
	}
	if n := s.refreshes.Load(); n < 2 {
		t.Fatalf("%d refreshes, want at least 2", n)
	}
}
