package snapshot

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// File is an open file of an FS.
type File interface {
	io.Reader
	// ReaderAt reads at an offset without moving the file's position: a
	// backup reads the pages a WAL holds from where they are.
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync flushes the file's content to stable storage.
	Sync() error
	// Name is the path the file was opened with.
	Name() string
}

// FS is every file operation the snapshot store performs. Production uses
// OSFS; tests use StrictFS, which refuses what Windows refuses.
type FS interface {
	// Open opens a file for reading.
	Open(name string) (File, error)
	// Create creates or truncates a file for writing.
	Create(name string) (File, error)
	// Rename renames (moves) a file or directory, replacing a file at newpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything under it; a missing path is
	// not an error.
	RemoveAll(path string) error
	// Stat describes a file.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates a directory and its parents.
	MkdirAll(path string, perm fs.FileMode) error
	// SyncDir makes a directory's entries (renames, creations) durable,
	// where the platform supports it.
	SyncDir(path string) error
}

// OSFS is the real file system.
type OSFS struct{}

var _ FS = OSFS{}

// Open opens name for reading.
func (OSFS) Open(name string) (File, error) { return os.Open(name) }

// Create creates or truncates name.
func (OSFS) Create(name string) (File, error) { return os.Create(name) }

// Rename renames oldpath to newpath.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove removes a file or empty directory.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll removes path recursively. It walks the tree itself with Remove
// rather than calling os.RemoveAll, which fails under wine ("Invalid
// function"); a missing path is not an error.
func (o OSFS) RemoveAll(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := o.RemoveAll(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Stat describes name.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// ReadDir lists name.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll creates path and its parents.
func (OSFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// SyncDir fsyncs a directory on Unix; Windows has no directory fsync (NTFS
// journals metadata), so it is a no-op there.
func (OSFS) SyncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// ErrSharingViolation is what StrictFS returns (wrapped) when asked to
// rename or remove a file that has an open handle.
var ErrSharingViolation = errors.New("file is open by another handle (sharing violation)")

// errnoSharingViolation is Windows' ERROR_SHARING_VIOLATION.
const errnoSharingViolation = syscall.Errno(32)

// IsSharingViolation reports whether err is a rename or remove refused
// because the file is open: StrictFS's error, or errno 32 from Windows.
func IsSharingViolation(err error) bool {
	if errors.Is(err, ErrSharingViolation) {
		return true
	}
	return runtime.GOOS == "windows" && errors.Is(err, errnoSharingViolation)
}

// sharingViolation is StrictFS's error: it matches ErrSharingViolation and
// unwraps to errno 32 as Windows reports it.
type sharingViolation struct{}

// Error is Windows' message for ERROR_SHARING_VIOLATION.
func (sharingViolation) Error() string {
	return "The process cannot access the file because it is being used by another process."
}

// Is matches ErrSharingViolation.
func (sharingViolation) Is(target error) bool { return target == ErrSharingViolation }

// Unwrap returns errno 32, as Windows reports it.
func (sharingViolation) Unwrap() error { return errnoSharingViolation }
