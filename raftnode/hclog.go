package raftnode

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/sqlraft/sqlraft/snapshot"
)

// newHCLogger adapts slog to the hclog interface hashicorp/raft logs through.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Debug, // slog's handler filters
		Output: slogWriter{l},
		// slog adds the time.
		DisableTime: true,
	})
}

// slogWriter forwards hclog's formatted lines to slog at their level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug} {
		if strings.HasPrefix(msg, prefix) {
			level = l
		}
	}
	if level == slog.LevelError && strings.Contains(msg, snapshot.ErrSuperseded.Error()) {
		// Raft reports a snapshot the store skipped because an install
		// replaced the database after the capture as a failure; it is not
		// one (see snapshot.ErrSuperseded and snapshot/DESIGN.md).
		level = slog.LevelInfo
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}

var _ io.Writer = slogWriter{}
