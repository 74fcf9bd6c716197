package raftnode

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/sqlraft/sqlraft/snapshot"
)

// slogHCLogger is the hclog.Logger hashicorp/raft logs through, forwarding
// every call to slog with its key/value pairs kept as attributes (Raft's
// "peer", "index", "error" and so on stay fields a log pipeline can query,
// rather than text inside the message). No library offers this direction of
// the adapter (hclog interface, slog backend) in a maintained form; it is
// small. Levels are filtered by the slog handler: the adapter reports every
// level enabled that the handler enables.
type slogHCLogger struct {
	l    *slog.Logger
	name string
	args []any // implied arguments (With), for ImpliedArgs
}

// newHCLogger adapts l to the hclog interface hashicorp/raft logs through.
func newHCLogger(l *slog.Logger) hclog.Logger { return &slogHCLogger{l: l} }

var _ hclog.Logger = (*slogHCLogger)(nil)

// slogLevel maps hclog's levels to slog's (Trace is below Debug).
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Log implements hclog.Logger.
func (h *slogHCLogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	if lvl == slog.LevelError && mentionsSuperseded(args) {
		// Raft reports a snapshot the store skipped because an install
		// replaced the database after the capture as a failure; it is not
		// one (see snapshot.ErrSuperseded and snapshot/DESIGN.md).
		lvl = slog.LevelInfo
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, lvl) {
		return
	}
	h.l.Log(ctx, lvl, msg, attrs(args)...)
}

// attrs turns hclog's key/value list into slog arguments: keys are
// strings in both, and a trailing key without a value is kept visibly.
func attrs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		key := fmt.Sprint(args[i])
		if i+1 == len(args) {
			out = append(out, slog.String("EXTRA_VALUE_AT_END", key))
			break
		}
		v := args[i+1]
		if f, ok := v.(hclog.Format); ok { // hclog.Fmt("%d", x)
			v = fmt.Sprintf(f[0].(string), f[1:]...)
		}
		out = append(out, slog.Any(key, v))
	}
	return out
}

// mentionsSuperseded reports whether any value is an error (or text) that
// says the store skipped a superseded snapshot. Raft wraps the store's error
// with %v, so the chain is lost: the text is what is left to match.
func mentionsSuperseded(args []any) bool {
	for i := 1; i < len(args); i += 2 {
		if strings.Contains(fmt.Sprint(args[i]), snapshot.ErrSuperseded.Error()) {
			return true
		}
	}
	return false
}

// Trace implements hclog.Logger.
func (h *slogHCLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (h *slogHCLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (h *slogHCLogger) Info(msg string, args ...any) { h.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (h *slogHCLogger) Warn(msg string, args ...any) { h.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (h *slogHCLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHCLogger) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}

// IsTrace implements hclog.Logger.
func (h *slogHCLogger) IsTrace() bool { return h.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (h *slogHCLogger) IsDebug() bool { return h.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (h *slogHCLogger) IsInfo() bool { return h.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (h *slogHCLogger) IsWarn() bool { return h.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (h *slogHCLogger) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (h *slogHCLogger) ImpliedArgs() []any { return h.args }

// With implements hclog.Logger.
func (h *slogHCLogger) With(args ...any) hclog.Logger {
	return &slogHCLogger{l: h.l.With(attrs(args)...), name: h.name, args: append(append([]any{}, h.args...), args...)}
}

// Name implements hclog.Logger.
func (h *slogHCLogger) Name() string { return h.name }

// Named implements hclog.Logger: names nest with dots, as in hclog, and
// travel as the "logger" attribute.
func (h *slogHCLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

// ResetNamed implements hclog.Logger.
func (h *slogHCLogger) ResetNamed(name string) hclog.Logger {
	return &slogHCLogger{l: h.l.With("logger", name), name: name, args: h.args}
}

// SetLevel implements hclog.Logger; the slog handler owns the level, so it
// does nothing.
func (h *slogHCLogger) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger: the lowest level the handler enables.
func (h *slogHCLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (h *slogHCLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: each line written is one record
// at the options' forced level (Info if none).
func (h *slogHCLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return lineWriter{h: h, level: level}
}

type lineWriter struct {
	h     *slogHCLogger
	level hclog.Level
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.h.Log(w.level, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
