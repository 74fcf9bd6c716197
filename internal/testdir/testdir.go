// Package testdir gives tests a temporary directory that can be cleaned up
// under wine, where scripts/test-windows.sh runs the tests of the packages
// that touch files: t.TempDir's cleanup calls os.RemoveAll, which fails
// there and fails the test.
package testdir

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// New creates a directory named after prefix under the system's temporary
// directory. Cleanup removes what it can, deepest first, and ignores
// errors (a file another handle still holds on Windows stays behind).
func New(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var paths []string
		filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				paths = append(paths, p)
			}
			return nil
		})
		for i := len(paths) - 1; i >= 0; i-- {
			os.Remove(paths[i])
		}
	})
	return dir
}
