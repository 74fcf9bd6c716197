package raftnode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sqlraft/sqlraft/snapshot"
)

// TestHCLogKeepsFields: Raft's key/value pairs arrive as slog attributes,
// names nest, levels map, and a superseded snapshot is not an error.
func TestHCLogKeepsFields(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	records := func() []map[string]any {
		var out []map[string]any
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}

	l.Named("raft").With("node", "n1").Warn("failed to contact", "peer", "n2", "index", 7, "error", errors.New("boom"))
	l.Trace("too fine to show")
	l.Error("failed to take snapshot", "error", fmt.Errorf("wrapped: %v", snapshot.ErrSuperseded))
	l.Info("odd", "lonely")
	got := records()
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3 (trace filtered): %v", len(got), got)
	}
	want := map[string]any{"level": "WARN", "msg": "failed to contact", "logger": "raft", "node": "n1", "peer": "n2",
		"index": float64(7), "error": "boom"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, got[0][k], v, got[0])
		}
	}
	if got[1]["level"] != "INFO" {
		t.Errorf("superseded snapshot logged at %v, want INFO", got[1]["level"])
	}
	if got[2]["EXTRA_VALUE_AT_END"] != "lonely" {
		t.Errorf("a key without a value was dropped: %v", got[2])
	}
	if l.IsTrace() || !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Errorf("levels: trace %v debug %v level %v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}
}
