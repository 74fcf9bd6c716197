package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// The Go runtime's memory settings. A node's live heap is small (10-20 MiB
// under the bench workloads) and most of what it allocates is garbage at
// once (request and entry encodings, results), so with Go's defaults
// (GOGC=100, no limit) the collector runs several times a second while the
// heap's high-water mark still follows the largest burst of garbage: the
// leader's RSS peaked at 64-69 MiB in bulk-4 (1,000-row requests from 4
// clients). The defaults below let the heap grow twice as far between
// collections, which costs less CPU per write, and cap the Go runtime's
// memory with a soft limit instead, near which the collector works harder
// (at most half the CPU, by the runtime's own bound). A node whose requests
// or results are much larger than the default message limit's share of
// that (big --max-message-size) should be given a higher --memory-limit.
// raftnode/DESIGN.md ("Memory and the garbage collector") has the
// measurements.
const (
	// defaultGCPercent is --gc-percent's default (GOGC).
	defaultGCPercent = 200
	// defaultMemoryLimit is --memory-limit's default (GOMEMLIMIT).
	defaultMemoryLimit = "32MiB"
)

// gcConfig is what --gc-percent and --memory-limit set.
type gcConfig struct {
	gcPercent   int
	memoryLimit string
}

// addGCFlags registers --gc-percent and --memory-limit on f.
func addGCFlags(f *pflag.FlagSet, c *gcConfig) {
	f.IntVar(&c.gcPercent, "gc-percent", defaultGCPercent,
		"garbage collection target percentage, as GOGC takes it (-1: off); GOGC in the environment wins over the default")
	f.StringVar(&c.memoryLimit, "memory-limit", defaultMemoryLimit,
		"soft limit on the Go runtime's memory (B, KiB, MiB, GiB, TiB; off: none), as GOMEMLIMIT takes it: "+
			"the collector works harder near it; SQLite's own memory is not counted; GOMEMLIMIT in the environment wins over the default")
}

// apply sets the runtime's GC percentage and memory limit. A setting the
// environment (GOGC, GOMEMLIMIT) already made is kept unless its flag was
// given on the command line.
func (c gcConfig) apply(f *pflag.FlagSet) error {
	limit, err := parseMemoryLimit(c.memoryLimit)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if c.gcPercent < -1 {
		return fmt.Errorf("--gc-percent: %d is below -1", c.gcPercent)
	}
	if f.Changed("gc-percent") || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(c.gcPercent)
	}
	if f.Changed("memory-limit") || os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	return nil
}

// parseMemoryLimit reads a limit as GOMEMLIMIT writes it: a number of bytes
// with an optional unit (B, KiB, MiB, GiB, TiB), or "off".
func parseMemoryLimit(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size such as 32MiB, or off", orig)
	}
	return n << shift, nil
}
