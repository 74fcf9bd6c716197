package snapshot

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// StrictFS wraps OSFS and behaves like Windows about open files: it tracks
// every handle it opened and refuses to rename or remove a path (or a
// directory containing a path) that still has one, with an error that
// matches ErrSharingViolation and unwraps to errno 32
// (ERROR_SHARING_VIOLATION). Every snapshot test runs on it.
type StrictFS struct {
	OSFS
	mu    sync.Mutex
	open  map[string]int
	files map[*strictFile]struct{}
}

var _ FS = (*StrictFS)(nil)

// NewStrictFS returns a StrictFS with no open handles.
func NewStrictFS() *StrictFS {
	return &StrictFS{open: map[string]int{}, files: map[*strictFile]struct{}{}}
}

func key(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	return filepath.Clean(name)
}

type strictFile struct {
	*os.File
	fs   *StrictFS
	key  string
	once sync.Once
}

// Close closes the file and forgets its handle.
func (f *strictFile) Close() error {
	err := f.File.Close()
	f.once.Do(func() { f.fs.release(f) })
	return err
}

func (s *StrictFS) track(f *os.File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	sf := &strictFile{File: f, fs: s, key: key(f.Name())}
	s.mu.Lock()
	s.open[sf.key]++
	s.files[sf] = struct{}{}
	s.mu.Unlock()
	return sf, nil
}

func (s *StrictFS) release(f *strictFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, f)
	if s.open[f.key]--; s.open[f.key] <= 0 {
		delete(s.open, f.key)
	}
}

// closeAll closes every open handle, as the death of the process would.
func (s *StrictFS) closeAll() {
	s.mu.Lock()
	files := make([]*strictFile, 0, len(s.files))
	for f := range s.files {
		files = append(files, f)
	}
	s.mu.Unlock()
	for _, f := range files {
		f.Close()
	}
}

// Open opens name for reading and tracks the handle.
func (s *StrictFS) Open(name string) (File, error) { return s.track(os.Open(name)) }

// Create creates or truncates name and tracks the handle.
func (s *StrictFS) Create(name string) (File, error) {
	if err := s.busy("open", name, false); err != nil {
		return nil, err
	}
	return s.track(os.Create(name))
}

// busy returns a sharing violation if name (or, with tree, anything under
// it) has an open handle.
func (s *StrictFS) busy(op, name string, tree bool) error {
	k := key(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.open {
		if p == k || (tree && strings.HasPrefix(p, k+string(filepath.Separator))) {
			return &fs.PathError{Op: op, Path: name, Err: sharingViolation{}}
		}
	}
	return nil
}

// Rename refuses if either path (or anything under oldpath) is open.
func (s *StrictFS) Rename(oldpath, newpath string) error {
	if err := s.busy("rename", oldpath, true); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: sharingViolation{}}
	}
	if err := s.busy("rename", newpath, true); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: sharingViolation{}}
	}
	return s.OSFS.Rename(oldpath, newpath)
}

// Remove refuses if name is open.
func (s *StrictFS) Remove(name string) error {
	if err := s.busy("remove", name, true); err != nil {
		return err
	}
	return s.OSFS.Remove(name)
}

// RemoveAll refuses if anything under path is open.
func (s *StrictFS) RemoveAll(path string) error {
	if err := s.busy("remove", path, true); err != nil {
		return err
	}
	return s.OSFS.RemoveAll(path)
}

// OpenHandles lists the paths with open handles, for tests and debugging.
func (s *StrictFS) OpenHandles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.open))
	for p := range s.open {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
