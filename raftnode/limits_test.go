package raftnode

import (
	"testing"

	raftlogv1 "github.com/sqlraft/sqlraft/api/sqlraft/raftlog/v1"
	"github.com/sqlraft/sqlraft/internal/msglimit"
	"github.com/sqlraft/sqlraft/internal/sqlitedb"
)

// TestEntryLimits: an entry is applied under the limits it carries, not the
// applying node's; entries from before limits get the fixed legacy ones.
func TestEntryLimits(t *testing.T) {
	if got := entryLimits(&raftlogv1.Command{}); got != legacyEntryLimits {
		t.Errorf("legacy entry: %+v", got)
	}
	cmd := &raftlogv1.Command{Limits: &raftlogv1.EntryLimits{MaxSteps: 1, MaxRows: 2, MaxBytes: 3, MaxResultBytes: 4}}
	if got := entryLimits(cmd); got != (sqlitedb.Limits{Steps: 1, Rows: 2, Bytes: 3, ResultBytes: 4}) {
		t.Errorf("stamped entry: %+v", got)
	}
	cfg := Config{ID: "a", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:1"}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	want := DefaultEntryLimits
	want.ResultBytes = msglimit.Default
	if *cfg.EntryLimits != want || cfg.raftConfig().MaxAppendEntries != cfg.limit.MaxAppendEntries() {
		t.Errorf("defaults: %+v", *cfg.EntryLimits)
	}
}
