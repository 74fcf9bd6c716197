package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestParseMemoryLimit checks that --memory-limit reads sizes as GOMEMLIMIT
// writes them and refuses anything else.
func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{"40MiB": 40 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "1000": 1000,
		"1000B": 1000, "2TiB": 2 << 40, " 8MiB ": 8 << 20, "off": math.MaxInt64} {
		got, err := parseMemoryLimit(in)
		if err != nil || got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "40MB", "forty", "1.5GiB", "9999999TiB"} {
		if got, err := parseMemoryLimit(in); err == nil {
			t.Errorf("parseMemoryLimit(%q) = %d, want an error", in, got)
		}
	}
}

// TestGCFlags checks the defaults of --gc-percent and --memory-limit and
// that a flag given on the command line is applied to the runtime.
func TestGCFlags(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cmd := rootCommand()
	f := cmd.Flags()
	if got := f.Lookup("gc-percent").DefValue; got != "200" {
		t.Errorf("--gc-percent defaults to %s", got)
	}
	if got := f.Lookup("memory-limit").DefValue; got != defaultMemoryLimit {
		t.Errorf("--memory-limit defaults to %s", got)
	}
	if err := f.Parse([]string{"--gc-percent", "150", "--memory-limit", "64MiB"}); err != nil {
		t.Fatal(err)
	}
	c := gcConfig{gcPercent: 150, memoryLimit: "64MiB"}
	if err := c.apply(f); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GC percent %d after --gc-percent 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("memory limit %d after --memory-limit 64MiB", got)
	}
	if err := (gcConfig{gcPercent: -2, memoryLimit: "off"}).apply(f); err == nil {
		t.Error("--gc-percent -2 accepted")
	}
	if err := (gcConfig{gcPercent: 100, memoryLimit: "lots"}).apply(f); err == nil {
		t.Error("--memory-limit lots accepted")
	}
}
