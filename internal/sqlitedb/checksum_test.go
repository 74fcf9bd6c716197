package sqlitedb

import (
	"context"
	"testing"
	"time"
)

// A checksum hashes the whole database; it must not need one of the pooled
// readers that validating every write needs.
func TestChecksumDoesNotUseThePooledReaders(t *testing.T) {
	db := openTest(t)
	write(t, db, 1, time.Now(), 1, stmt("CREATE TABLE t(v TEXT)"), stmt("INSERT INTO t VALUES('a')"))
	var held []*conn
	for range db.opts.Readers {
		held = append(held, <-db.readers)
	}
	defer func() {
		for _, c := range held {
			db.readers <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pos, sum, err := db.Checksum(ctx)
	if err != nil || pos.Index != 1 || sum == "" {
		t.Fatalf("checksum with every pooled reader busy: index %d sum %q err %v", pos.Index, sum, err)
	}
}
