package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func TestStrictFSRefusesOpenFiles(t *testing.T) {
	dir := tempDir(t)
	fsys := NewStrictFS()
	a := filepath.Join(dir, "sub", "a")
	if err := fsys.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := fsys.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Close()
	f, err := fsys.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"rename":      func() error { return fsys.Rename(a, a+".new") },
		"rename over": func() error { return fsys.Rename(filepath.Join(dir, "x"), a) },
		"remove":      func() error { return fsys.Remove(a) },
		"remove dir":  func() error { return fsys.RemoveAll(filepath.Join(dir, "sub")) },
		"rename dir":  func() error { return fsys.Rename(filepath.Join(dir, "sub"), filepath.Join(dir, "sub2")) },
	} {
		err := op()
		if !errors.Is(err, ErrSharingViolation) || !errors.Is(err, syscall.Errno(32)) {
			t.Errorf("%s with an open handle: %v, want a sharing violation wrapping errno 32", name, err)
		}
		if !IsSharingViolation(err) {
			t.Errorf("%s: IsSharingViolation false", name)
		}
	}
	if got := fsys.OpenHandles(); len(got) != 1 {
		t.Errorf("open handles %v", got)
	}
	f.Close()
	if err := fsys.Rename(a, a+".new"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Fatalf("sub still there: %v", err)
	}
}

func TestOSFSRemoveAllMissingPath(t *testing.T) {
	if err := (OSFS{}).RemoveAll(filepath.Join(tempDir(t), "nope")); err != nil {
		t.Fatal(err)
	}
}

// TestWindowsRefusesOpenFiles checks, on Windows (or wine), that the real
// OS refuses what StrictFS refuses, with the errno StrictFS wraps.
func TestWindowsRefusesOpenFiles(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("Windows semantics only")
	}
	dir := tempDir(t)
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OSFS{}.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"rename": OSFS{}.Rename(a, a+".new"),
		"remove": OSFS{}.Remove(a),
	} {
		if !errors.Is(err, syscall.Errno(32)) || !IsSharingViolation(err) {
			t.Errorf("%s of an open file on Windows: %v, want errno 32", name, err)
		}
	}
	f.Close()
	if err := (OSFS{}).Rename(a, a+".new"); err != nil {
		t.Fatal(err)
	}
}
