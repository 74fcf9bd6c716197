package snapshot

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestReadAhead: what Read and WriteTo return is the source's bytes in
// order, then its error (none at its end); Close in the middle stops the
// goroutine, after which reads fail instead of blocking.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 5<<20+123)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	src := func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }
	var viaRead bytes.Buffer
	ra := newReadAhead(src(), 1<<20, 2)
	if _, err := io.CopyBuffer(struct{ io.Writer }{&viaRead}, struct{ io.Reader }{ra}, make([]byte, 7000)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	var viaWriteTo bytes.Buffer
	ra = newReadAhead(src(), 1<<20, 2)
	if n, err := ra.WriteTo(&viaWriteTo); err != nil || n != int64(len(data)) {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	ra.Close()
	if !bytes.Equal(viaRead.Bytes(), data) || !bytes.Equal(viaWriteTo.Bytes(), data) {
		t.Fatal("read-ahead changed the bytes")
	}

	broken := errors.New("disk on fire")
	ra = newReadAhead(io.MultiReader(bytes.NewReader(data[:3<<20]), iotest.ErrReader(broken)), 1<<20, 2)
	if n, err := io.Copy(io.Discard, ra); n != 3<<20 || !errors.Is(err, broken) {
		t.Fatalf("failing source: %d bytes, %v", n, err)
	}
	ra.Close()

	ra = newReadAhead(src(), 1<<20, 2)
	if _, err := io.ReadFull(ra, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	ra.Close()
	if _, err := io.Copy(io.Discard, ra); !errors.Is(err, errReadAheadClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}
