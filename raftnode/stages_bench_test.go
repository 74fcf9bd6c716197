package raftnode_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	metrics "github.com/armon/go-metrics"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// BenchmarkHotPathWriteStages breaks the latency of one INSERT from one
// client (the insert-1 workload, without the client's gRPC hop) into the
// stages hashicorp/raft times: the leader's append to its own log (with its
// fsync), the AppendEntries round trip to a follower (network, and the
// follower's append with its fsync), commit (from the leader's dispatch
// to a quorum having the entry) and the FSM's apply of a batch. It reports
// each stage's mean in µs beside the end-to-end time per write; what is
// left is the request's own path (validation, proposal, waking the caller).
// The stages overlap (commit includes the two appends), and every node of
// the in-process cluster reports into the same sink, so the FSM mean is
// over leader and followers alike.
func BenchmarkHotPathWriteStages(b *testing.B) {
	sink := newStageSink()
	cfg := metrics.DefaultConfig("")
	cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableHostnameLabel = false, false, false
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		b.Fatal(err)
	}
	defer metrics.NewGlobal(cfg, &metrics.BlackholeSink{})
	c := newCluster(b, 3, nil)
	execute(b, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	leader := c.leader().Raft
	stmts := []*sqlraftv1.Statement{{Sql: "INSERT INTO t(v) VALUES(?)",
		Params: []*sqlraftv1.Value{{Kind: &sqlraftv1.Value_Text{Text: benchValue}}}}}
	sink.reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := leader.Execute(ctx, stmts, false)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, s := range []struct{ key, unit string }{
		{"raft.leader.dispatchLog", "leader-append-µs"},
		{"raft.replication.appendEntries.rpc", "append-rpc-µs"},
		{"raft.rpc.appendEntries.storeLogs", "follower-append-µs"},
		{"raft.commitTime", "commit-µs"},
		{"raft.fsm.applyBatch", "fsm-apply-µs"},
	} {
		b.ReportMetric(sink.mean(s.key)*1000, s.unit)
	}
}

// stageSink is a go-metrics sink that keeps the sum and count of every
// sample key (timers are samples in milliseconds).
type stageSink struct {
	mu  sync.Mutex
	sum map[string]float64
	n   map[string]int
}

func newStageSink() *stageSink { s := &stageSink{}; s.reset(); return s }

func (s *stageSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sum, s.n = map[string]float64{}, map[string]int{}
}

func (s *stageSink) mean(key string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] == 0 {
		return 0
	}
	return s.sum[key] / float64(s.n[key])
}

func (s *stageSink) AddSample(key []string, val float32) {
	k := strings.Join(key, ".")
	s.mu.Lock()
	s.sum[k] += float64(val)
	s.n[k]++
	s.mu.Unlock()
}

func (s *stageSink) AddSampleWithLabels(key []string, val float32, _ []metrics.Label) {
	s.AddSample(key, val)
}
func (s *stageSink) SetGauge([]string, float32)                               {}
func (s *stageSink) SetGaugeWithLabels([]string, float32, []metrics.Label)    {}
func (s *stageSink) EmitKey([]string, float32)                                {}
func (s *stageSink) IncrCounter([]string, float32)                            {}
func (s *stageSink) IncrCounterWithLabels([]string, float32, []metrics.Label) {}
