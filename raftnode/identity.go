package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// IDFileName is the file in a node's data directory that records the node's
// ID. It is written once, on the first start with that directory, and read
// on every start after: a data directory belongs to one node for good.
const IDFileName = "node-id"

// StoredID is what a data directory says about the ID of the node that owns
// it.
type StoredID struct {
	// ID is the recorded ID, "" when the directory records none.
	ID string
	// HasState is true when the directory holds a database or a Raft log.
	// With no ID recorded, that state was written by a version that did not
	// record IDs; the node must keep the ID it had then.
	HasState bool
}

// IDMismatchError is returned when a data directory recorded one ID and the
// node is being started with another.
type IDMismatchError struct {
	DataDir   string
	Stored    string // the ID recorded in DataDir
	Requested string // the ID the node was started with
}

// Error names both IDs.
func (e *IDMismatchError) Error() string {
	return fmt.Sprintf("data directory %s belongs to node %q, not %q", e.DataDir, e.Stored, e.Requested)
}

// ReadStoredID reports the ID recorded in dataDir and whether dataDir holds
// node state. A missing directory records nothing.
func ReadStoredID(dataDir string) (StoredID, error) {
	var s StoredID
	b, err := os.ReadFile(filepath.Join(dataDir, IDFileName))
	switch {
	case err == nil:
		id := strings.TrimSuffix(string(b), "\n")
		if err := checkID(id); err != nil {
			return s, fmt.Errorf("%s: %w", filepath.Join(dataDir, IDFileName), err)
		}
		s.ID = id
	case !errors.Is(err, fs.ErrNotExist):
		return s, err
	}
	for _, name := range []string{"db.sqlite", "raft"} {
		_, err := os.Stat(filepath.Join(dataDir, name))
		if err == nil {
			s.HasState = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return s, err
		}
	}
	return s, nil
}

// ClaimDataDir makes dataDir the data directory of node id: it records id
// when the directory records no ID yet (creating the directory if needed),
// and returns an *IDMismatchError when it records another.
func ClaimDataDir(dataDir, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	stored, err := ReadStoredID(dataDir)
	if err != nil {
		return err
	}
	if stored.ID != "" {
		if stored.ID != id {
			return &IDMismatchError{DataDir: dataDir, Stored: stored.ID, Requested: id}
		}
		return nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dataDir, IDFileName), []byte(id+"\n"))
}

// checkID accepts the IDs that round-trip through the ID file: not empty,
// one line, no surrounding white space.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("node ID is empty")
	case strings.ContainsAny(id, "\r\n"):
		return fmt.Errorf("node ID %q spans lines", id)
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("node ID %q starts or ends with white space", id)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs and
// closes it, then renames it to path and syncs the directory: a crash leaves
// either no file or the whole file. The file is closed before the rename,
// which Windows requires.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory
// handle, and its renames need no such step.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
