package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

func peer(i int) Peer {
	return Peer{
		ID:       fmt.Sprintf("sqlraft-%d", i),
		RaftAddr: fmt.Sprintf("sqlraft-%d.h:6002", i),
		GRPCAddr: fmt.Sprintf("sqlraft-%d.h:6001", i),
	}
}

func TestDecide(t *testing.T) {
	p0, p1, p2 := peer(0), peer(1), peer(2)
	member := p1
	member.Member = true
	tests := []struct {
		name   string
		self   Peer
		expect int
		peers  []Peer
		ok     bool
		want   Plan
	}{
		{"too few", p0, 3, []Peer{p0, p1}, false, Plan{}},
		{"too few without self listed", p0, 3, []Peer{p1}, false, Plan{}},
		{"duplicates do not count", p1, 3, []Peer{p1, p2, p2}, false, Plan{}},
		{"lowest bootstraps", p0, 3, []Peer{p2, p1, p0}, true,
			Plan{Action: ActionBootstrap, Voters: []Peer{p0, p1, p2}}},
		{"self counts even if not probed", p0, 3, []Peer{p2, p1}, true,
			Plan{Action: ActionBootstrap, Voters: []Peer{p0, p1, p2}}},
		{"other joins lowest first", p2, 3, []Peer{p0, p1, p2}, true,
			Plan{Action: ActionJoin, JoinAddrs: []string{p0.GRPCAddr, p1.GRPCAddr}}},
		{"single node", p0, 1, nil, true, Plan{Action: ActionBootstrap, Voters: []Peer{p0}}},
		{"more than expected all voters", p0, 2, []Peer{p1, p2}, true,
			Plan{Action: ActionBootstrap, Voters: []Peer{p0, p1, p2}}},
		{"existing cluster wins over lowest", p0, 3, []Peer{member, p2}, true,
			Plan{Action: ActionJoin, JoinAddrs: []string{member.GRPCAddr, p2.GRPCAddr}}},
		{"existing cluster needs no quorum of answers", p2, 3, []Peer{member}, true,
			Plan{Action: ActionJoin, JoinAddrs: []string{member.GRPCAddr}}},
		{"join only waits for a member", p0, 0, []Peer{p1, p2}, false, Plan{}},
		{"join only joins a member", p0, 0, []Peer{member}, true,
			Plan{Action: ActionJoin, JoinAddrs: []string{member.GRPCAddr}}},
		{"self member is ignored", Peer{ID: "a", Member: true}, 2, nil, false, Plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Decide(tt.self, tt.expect, tt.peers)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (plan %+v)", ok, tt.ok, got)
			}
			if ok && !equalPlan(got, tt.want) {
				t.Fatalf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalPlan(a, b Plan) bool {
	return a.Action == b.Action && slices.Equal(a.Voters, b.Voters) && slices.Equal(a.JoinAddrs, b.JoinAddrs)
}

// world is a fake network: the nodes that are up answer probes.
type world struct {
	mu      sync.Mutex
	up      map[string]Peer // by gRPC address
	visible map[string]bool // listed by the source
}

func newWorld() *world { return &world{up: map[string]Peer{}, visible: map[string]bool{}} }

func (w *world) Addresses(context.Context) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for a := range w.visible {
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	slices.Sort(out)
	return out, nil
}

func (w *world) Probe(ctx context.Context, addr string) (Peer, error) {
	w.mu.Lock()
	p, ok := w.up[addr]
	w.mu.Unlock()
	if !ok {
		return Peer{}, errors.New("connection refused")
	}
	return p, nil
}

func (w *world) start(p Peer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.up[p.GRPCAddr] = p
	w.visible[p.GRPCAddr] = true
}

func (w *world) markMember(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, p := range w.up {
		if p.ID == id {
			p.Member = true
			w.up[a] = p
		}
	}
}

// TestRunRandomStartOrder starts three nodes in random order with random
// delays; exactly one must bootstrap, with all three as voters.
func TestRunRandomStartOrder(t *testing.T) {
	for trial := range 30 {
		w := newWorld()
		plans := make([]Plan, 3)
		var wg sync.WaitGroup
		for i, idx := range rand.Perm(3) {
			self := peer(idx)
			delay := time.Duration(i*rand.IntN(5)) * time.Millisecond
			wg.Go(func() {
				time.Sleep(delay)
				w.start(self)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				plan, err := Run(ctx, Config{Self: self, Expect: 3, Source: w, Prober: w, Interval: 2 * time.Millisecond})
				if err != nil {
					t.Errorf("trial %d node %s: %v", trial, self.ID, err)
				}
				plans[idx] = plan
			})
		}
		wg.Wait()
		var boots int
		for i, p := range plans {
			if p.Action == ActionBootstrap {
				boots++
				if i != 0 || len(p.Voters) != 3 {
					t.Fatalf("trial %d: node %d bootstraps with %v", trial, i, p.Voters)
				}
			} else if p.Action != ActionJoin || p.JoinAddrs[0] != peer(0).GRPCAddr {
				t.Fatalf("trial %d: node %d plan %+v", trial, i, p)
			}
		}
		if boots != 1 {
			t.Fatalf("trial %d: %d bootstraps", trial, boots)
		}
	}
}

func TestRunWaitsForExpected(t *testing.T) {
	w := newWorld()
	w.start(peer(1))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Config{Self: peer(1), Expect: 3, Source: w, Prober: w, Interval: time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// TestRunJoinsFormedCluster: a late node (or one restarted with an empty
// data dir) joins even when it would have the lowest ID.
func TestRunJoinsFormedCluster(t *testing.T) {
	w := newWorld()
	for i := 1; i <= 3; i++ {
		w.start(peer(i))
	}
	w.markMember("sqlraft-2")
	w.start(peer(0))
	plan, err := Run(context.Background(), Config{Self: peer(0), Expect: 3, Source: w, Prober: w, Interval: time.Millisecond})
	if err != nil || plan.Action != ActionJoin || plan.JoinAddrs[0] != peer(2).GRPCAddr {
		t.Fatalf("plan %+v, err %v", plan, err)
	}
}

func TestRunResumesWithState(t *testing.T) {
	plan, err := Run(context.Background(), Config{HasState: true})
	if err != nil || plan.Action != ActionResume {
		t.Fatalf("plan %+v, err %v", plan, err)
	}
}

func TestRunBadConfig(t *testing.T) {
	_, err := Run(context.Background(), Config{Self: peer(0), Expect: -1, Source: StaticSource{}, Prober: newWorld()})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}

// TestRunNeedsStableSet: the bootstrapper waits for StableRounds identical
// rounds, so a node appearing between rounds is included.
func TestRunNeedsStableSet(t *testing.T) {
	w := newWorld()
	w.start(peer(0))
	w.start(peer(1))
	rounds := 0
	src := sourceFunc(func(ctx context.Context) ([]string, error) {
		rounds++
		if rounds == 2 {
			w.start(peer(2))
		}
		return w.Addresses(ctx)
	})
	plan, err := Run(context.Background(), Config{Self: peer(0), Expect: 2, Source: src, Prober: w, Interval: time.Millisecond, StableRounds: 2})
	if err != nil || plan.Action != ActionBootstrap || len(plan.Voters) != 3 {
		t.Fatalf("plan %+v, err %v", plan, err)
	}
}

type sourceFunc func(context.Context) ([]string, error)

func (f sourceFunc) Addresses(ctx context.Context) ([]string, error) { return f(ctx) }

type fakeResolver map[string][]net.IPAddr

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func TestDNSSource(t *testing.T) {
	r := fakeResolver{"sqlraft-headless": {
		{IP: net.ParseIP("10.0.0.3")}, {IP: net.ParseIP("10.0.0.1")}, {IP: net.ParseIP("fd00::2")}, {IP: net.ParseIP("10.0.0.1")},
	}}
	src, err := NewDNSSource("sqlraft-headless", "6001", r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Addresses(context.Background())
	want := []string{"10.0.0.1:6001", "10.0.0.3:6001", "[fd00::2]:6001"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	src, _ = NewDNSSource("missing:7000", "6001", r)
	if src.Port != "7000" {
		t.Fatalf("port = %q", src.Port)
	}
	if _, err := src.Addresses(context.Background()); err == nil {
		t.Fatal("want lookup error")
	}
	if _, err := NewDNSSource("", "6001", r); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseJoinList(t *testing.T) {
	got := ParseJoinList(" a:1, ,b:2,")
	if !slices.Equal(got, StaticSource{"a:1", "b:2"}) {
		t.Fatalf("got %q", got)
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{ActionResume: "resume", ActionBootstrap: "bootstrap", ActionJoin: "join", 9: "Action(9)"} {
		if a.String() != want {
			t.Errorf("%d: %q", a, a.String())
		}
	}
}
