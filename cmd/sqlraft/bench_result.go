package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// benchResult summarises a run.
type benchResult struct {
	cfg      benchConfig
	ops      int   // successful requests
	units    int64 // statements (tx), rows (bulk), bytes (backup) or requests of the successful requests
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	bytes    int64 // --op backup: the size of the copy
	firstErr error
	polls    pollCounts
}

// unit names what units counts.
func (r *benchResult) unit() string {
	switch r.cfg.op {
	case "tx":
		return "statements"
	case "bulk":
		return "rows"
	case "backup":
		return "bytes"
	}
	return "ops"
}

func (r *benchResult) opsPerSecond() float64   { return float64(r.ops) / r.elapsed.Seconds() }
func (r *benchResult) unitsPerSecond() float64 { return float64(r.units) / r.elapsed.Seconds() }

// print writes r as text, or as one JSON object when format is json.
func (r *benchResult) print(w io.Writer, format string) error {
	if format == "json" {
		b, err := json.MarshalIndent(r.report(), "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(w, r.String())
	return err
}

func (r *benchResult) String() string {
	if r.cfg.op == "backup" {
		s := fmt.Sprintf("op=backup errors=%d bytes=%d seconds=%.3f MB/s=%.1f", r.errors, r.bytes, r.elapsed.Seconds(),
			r.unitsPerSecond()/1e6)
		if r.firstErr != nil {
			s += "\nfirst error: " + r.firstErr.Error()
		}
		return s
	}
	s := fmt.Sprintf("op=%s consistency=%s clients=%d targets=%d ops=%d errors=%d duration=%.1fs ops/s=%.0f p50=%s p99=%s",
		r.cfg.op, r.cfg.consistency, r.cfg.clients, len(r.cfg.targets), r.ops, r.errors, r.elapsed.Seconds(),
		r.opsPerSecond(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	if u := r.unit(); u != "ops" {
		s += fmt.Sprintf(" tx-size=%d %s=%d %s/s=%.0f", r.cfg.txSize, u, r.units, u, r.unitsPerSecond())
	}
	if r.cfg.checksumPollers+r.cfg.statusPollers > 0 {
		s += fmt.Sprintf(" checksum-pollers=%d checksums=%d status-pollers=%d statuses=%d poll-errors=%d poll-interval=%s",
			r.cfg.checksumPollers, r.polls.checksums.Load(), r.cfg.statusPollers, r.polls.statuses.Load(), r.polls.errors.Load(),
			r.cfg.pollInterval)
	}
	if r.firstErr != nil {
		s += "\nfirst error: " + r.firstErr.Error()
	}
	return s
}

// benchReport is a result as -o json prints it, for scripts.
type benchReport struct {
	Op          string   `json:"op"`
	Consistency string   `json:"consistency,omitempty"`
	Clients     int      `json:"clients"`
	Targets     []string `json:"targets"`
	TxSize      int      `json:"tx_size,omitempty"`
	ValueBytes  int      `json:"value_bytes"`
	Seconds     float64  `json:"seconds"`
	// Ops counts successful requests, Errors failed ones.
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	OpsPerSec float64 `json:"ops_per_s"`
	// Unit is what Units counts: ops, statements (tx), rows (bulk) or bytes
	// (backup).
	Unit        string  `json:"unit"`
	Units       int64   `json:"units"`
	UnitsPerSec float64 `json:"units_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// MBPerSec is set for backup: Units/Seconds in 10^6 bytes.
	MBPerSec   float64 `json:"mb_per_s,omitempty"`
	Checksums  uint64  `json:"checksums,omitempty"`
	Statuses   uint64  `json:"statuses,omitempty"`
	PollErrors uint64  `json:"poll_errors,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

func (r *benchResult) report() benchReport {
	rep := benchReport{Op: r.cfg.op, Clients: r.cfg.clients, Targets: r.cfg.targets, ValueBytes: r.cfg.valueBytes,
		Seconds: r.elapsed.Seconds(), Ops: r.ops, Errors: r.errors, OpsPerSec: r.opsPerSecond(), Unit: r.unit(),
		Units: r.units, UnitsPerSec: r.unitsPerSecond(),
		P50Ms: float64(r.p50) / float64(time.Millisecond), P99Ms: float64(r.p99) / float64(time.Millisecond)}
	switch r.cfg.op {
	case "read", "mix":
		rep.Consistency = r.cfg.consistency
	case "tx", "bulk":
		rep.TxSize = r.cfg.txSize
	case "backup":
		rep.MBPerSec = r.unitsPerSecond() / 1e6
		rep.Clients, rep.ValueBytes = 1, 0
	}
	if r.polls.checksums != nil {
		rep.Checksums, rep.Statuses, rep.PollErrors = r.polls.checksums.Load(), r.polls.statuses.Load(), r.polls.errors.Load()
	}
	if r.firstErr != nil {
		rep.FirstError = r.firstErr.Error()
	}
	return rep
}
