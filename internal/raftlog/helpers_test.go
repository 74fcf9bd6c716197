package raftlog

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/types"

	"github.com/sqlraft/sqlraft/internal/testdir"
	"github.com/sqlraft/sqlraft/internal/testlog"
)

// tempDir is a temporary directory that cleanup can remove under wine.
func tempDir(t testing.TB) string { return testdir.New(t, "raftlogtest") }

// testLogger returns a logger into a buffer that is shown if t fails.
func testLogger(t testing.TB) (hclog.Logger, *testlog.Buffer) {
	buf := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("store log:\n%s", buf)
		}
	})
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug}), buf
}

// openStore opens a store in dir with a test logger and the given faults
// (nil for none), closing it when the test ends.
func openStore(t testing.TB, dir string, segmentSize int, f *faults) (*Store, *testlog.Buffer) {
	t.Helper()
	logger, buf := testLogger(t)
	opts := Options{Logger: logger, SegmentSize: segmentSize}
	if f != nil {
		opts.wrapVFS = f.wrapVFS
		opts.wrapMeta = f.wrapMeta
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, buf
}

// entries returns log entries from to to (inclusive) in term, each with a
// payload of size bytes naming its index.
func entries(from, to, term uint64, size int) []*raft.Log {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		data := bytes.Repeat([]byte{byte(i)}, size)
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: data})
	}
	return logs
}

// checkLog fails t unless the store holds exactly the entries first to last
// in term, as entries made them.
func checkLog(t testing.TB, s *Store, first, last, term uint64, size int) {
	t.Helper()
	f, err1 := s.FirstIndex()
	l, err2 := s.LastIndex()
	if err := errors.Join(err1, err2); err != nil || f != first || l != last {
		t.Fatalf("log holds %d-%d (%v), want %d-%d", f, l, err, first, last)
	}
	if first == 0 {
		return
	}
	for i := first; i <= last; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := entries(i, i, term, size)[0]
		if got.Index != i || got.Term != term || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("GetLog(%d) = index %d term %d, %d bytes; want term %d", i, got.Index, got.Term, len(got.Data), term)
		}
	}
	var l2 raft.Log
	if err := s.GetLog(last+1, &l2); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(%d) past the end: %v, want ErrLogNotFound", last+1, err)
	}
}

// segmentFiles lists the segment files in dir.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// noErrorsLogged fails t if the store logged at error level.
func noErrorsLogged(t testing.TB, buf *testlog.Buffer) {
	t.Helper()
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, "[ERROR]") {
			t.Errorf("store logged an error: %s", line)
		}
	}
}

var _ types.VFS = faultVFS{}

func newBoltMeta() *metadb.BoltMetaDB { return &metadb.BoltMetaDB{} }
