// Command rqbench drives an rqlite node over its HTTP API with the same
// closed-loop workloads as `sqlraft bench` (C clients, each sending its next
// request when the last returns) and prints the same JSON fields, so that
// scripts/bench-cluster.sh can put rqlite beside sqlraft. It uses only the
// standard library and is built by the scripts, outside sqlraft's module.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	insertSQL = "INSERT INTO sqlraft_bench(v) VALUES(?)"
	readSQL   = "SELECT v FROM sqlraft_bench WHERE id = ?"
)

// config is what one run does.
type config struct {
	addr        string
	op          string
	clients     int
	duration    time.Duration
	consistency string
	rows        int
	valueBytes  int
	txSize      int
	backupFile  string
	timeout     time.Duration
}

// report is the JSON printed, with the field names of `sqlraft bench -o json`.
type report struct {
	Op          string  `json:"op"`
	Consistency string  `json:"consistency,omitempty"`
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	OpsPerSec   float64 `json:"ops_per_s"`
	Unit        string  `json:"unit"`
	Units       int64   `json:"units"`
	UnitsPerSec float64 `json:"units_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MBPerSec    float64 `json:"mb_per_s,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:4001", "the node's HTTP address")
	flag.StringVar(&c.op, "op", "write", "write, read, tx, bulk or backup")
	flag.IntVar(&c.clients, "clients", 1, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run")
	flag.StringVar(&c.consistency, "consistency", "linearizable", "read level: none, weak, linearizable or strong")
	flag.IntVar(&c.rows, "rows", 10000, "rows to make sure exist before reading")
	flag.IntVar(&c.valueBytes, "value-bytes", 64, "size of each written TEXT value")
	flag.IntVar(&c.txSize, "tx-size", 0, "INSERTs per request with tx (default 100) and bulk (default 1000)")
	flag.StringVar(&c.backupFile, "backup-file", "", "where --op backup writes (default: a temporary file, removed)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Minute, "per-request timeout")
	flag.Parse()
	if c.txSize == 0 {
		c.txSize = map[string]int{"tx": 100, "bulk": 1000}[c.op]
	}
	rep, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rqbench:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
}

func run(c config) (report, error) {
	switch c.op {
	case "backup":
		return runBackup(c)
	case "write", "read", "tx", "bulk":
	default:
		return report{}, fmt.Errorf("unknown --op %q", c.op)
	}
	if c.clients < 1 || c.rows < 1 {
		return report{}, errors.New("--clients and --rows must be at least 1")
	}
	if err := setup(newClient(c.timeout), c); err != nil {
		return report{}, fmt.Errorf("setup: %w", err)
	}
	return runClients(c), nil
}

// newClient returns an HTTP client holding one keep-alive connection.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
}

// setup creates the table and makes sure rows 1..c.rows exist, as the
// sqlraft client does.
func setup(hc *http.Client, c config) error {
	body, _ := json.Marshal([]any{
		[]any{"CREATE TABLE IF NOT EXISTS sqlraft_bench(id INTEGER PRIMARY KEY, v TEXT)"},
		[]any{`INSERT INTO sqlraft_bench(id, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		       SELECT i, ? FROM n WHERE true ON CONFLICT(id) DO NOTHING`, c.rows, strings.Repeat("s", c.valueBytes)},
	})
	return post(hc, "http://"+c.addr+"/db/execute", body)
}

// post sends body and fails on a transport error, a status other than 200
// or an error in the response or in any of its results.
func post(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var r struct {
		Error   string `json:"error"`
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return errors.New(res.Error)
		}
	}
	return nil
}

// request returns one client's request: it sends one and returns the units
// of work it did (statements for tx, rows for bulk, 1 otherwise).
func request(c config, hc *http.Client, rng *rand.Rand) func() (int, error) {
	base := "http://" + c.addr
	value := strings.Repeat("x", c.valueBytes)
	switch c.op {
	case "read":
		url := base + "/db/query?level=" + c.consistency
		return func() (int, error) {
			body := fmt.Appendf(nil, `[[%q,%d]]`, readSQL, rng.IntN(c.rows)+1)
			return 1, post(hc, url, body)
		}
	case "tx", "bulk":
		stmts := make([]any, c.txSize)
		for i := range stmts {
			stmts[i] = []any{insertSQL, value}
		}
		body, _ := json.Marshal(stmts)
		url := base + "/db/execute?transaction"
		return func() (int, error) { return c.txSize, post(hc, url, body) }
	}
	body, _ := json.Marshal([]any{[]any{insertSQL, value}})
	url := base + "/db/execute"
	return func() (int, error) { return 1, post(hc, url, body) }
}

// runClients runs c.clients closed-loop clients for c.duration.
func runClients(c config) report {
	lat := make([][]time.Duration, c.clients)
	units := make([]int64, c.clients)
	errs := make([]int, c.clients)
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(c.duration)
	var wg sync.WaitGroup
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			send := request(c, newClient(c.timeout), rand.New(rand.NewPCG(uint64(i), 7)))
			for time.Now().Before(deadline) {
				t0 := time.Now()
				n, err := send()
				if err != nil {
					errs[i]++
					once.Do(func() { firstErr = err })
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				units[i] += int64(n)
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	rep := report{Op: c.op, Clients: c.clients, Seconds: elapsed.Seconds(), Unit: unitOf(c.op)}
	if c.op == "read" {
		rep.Consistency = c.consistency
	}
	for i := range lat {
		all = append(all, lat[i]...)
		rep.Errors += errs[i]
		rep.Units += units[i]
	}
	rep.Ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		rep.P50Ms = ms(all[len(all)*50/100])
		rep.P99Ms = ms(all[min(len(all)*99/100, len(all)-1)])
	}
	rep.OpsPerSec = float64(rep.Ops) / elapsed.Seconds()
	rep.UnitsPerSec = float64(rep.Units) / elapsed.Seconds()
	if firstErr != nil {
		rep.FirstError = firstErr.Error()
	}
	return rep
}

func unitOf(op string) string {
	switch op {
	case "tx":
		return "statements"
	case "bulk":
		return "rows"
	case "backup":
		return "bytes"
	}
	return "ops"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runBackup times one GET /db/backup, from the request until the copy is
// synced to c.backupFile, as `sqlraft bench --op backup` times a Backup.
func runBackup(c config) (report, error) {
	path := c.backupFile
	if path == "" {
		dir, err := os.MkdirTemp("", "rqbench-backup")
		if err != nil {
			return report{}, err
		}
		defer os.RemoveAll(dir)
		path = dir + "/backup.db"
	}
	start := time.Now()
	size, err := saveBackup(newClient(c.timeout), "http://"+c.addr+"/db/backup", path)
	elapsed := time.Since(start)
	rep := report{Op: "backup", Clients: 1, Seconds: elapsed.Seconds(), Unit: "bytes", P50Ms: ms(elapsed), P99Ms: ms(elapsed)}
	if err != nil {
		rep.Errors, rep.FirstError = 1, "backup: "+err.Error()
		return rep, nil
	}
	rep.Ops, rep.Units = 1, size
	rep.OpsPerSec = 1 / elapsed.Seconds()
	rep.UnitsPerSec = float64(size) / elapsed.Seconds()
	rep.MBPerSec = rep.UnitsPerSec / 1e6
	return rep, nil
}

// saveBackup streams url's body to path (through path.partial, renamed
// when synced) and checks that it is a SQLite file.
func saveBackup(hc *http.Client, url, path string) (int64, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	size, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	head := make([]byte, 16)
	if f, err := os.Open(tmp); err == nil {
		_, err = io.ReadFull(f, head)
		f.Close()
	}
	if !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return 0, errors.New("the backup received is not a SQLite file")
	}
	return size, os.Rename(tmp, path)
}
