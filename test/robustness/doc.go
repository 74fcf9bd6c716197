//go:build robustness

// Package robustness is sqlraft's robustness suite: it runs real 3-node
// clusters of sqlraftd processes on loopback, drives workloads against them
// while it injects faults, records every operation with client-side invoke
// and return times, and checks what the clients saw.
//
// # Topology
//
// Each node's two ports (client API and Raft) sit behind a Proxy; nodes
// advertise the proxies' addresses, so all traffic between nodes — Raft,
// snapshot installs, forwarded requests, joins — and all client traffic go
// through them. The daemon is built with the robustness tag, which makes a
// node dial other nodes from its own loopback address (127.0.0.11 + i,
// SQLRAFT_DIAL_SOURCE_IP); a proxy tells the sender by the source address,
// so a fault can be set on any directed link: blackhole (a partition: the
// link's connections are cut and new ones hang), drop (one way), or delay
// with jitter. Processes are killed with SIGKILL and restarted on the same
// data directory, or paused with SIGSTOP.
//
// # Workloads
//
// All three run in every scenario, at the same time:
//
//   - a register: 8 integer registers, read at LINEARIZABLE and STRONG,
//     written, and compare-and-set with UPDATE … WHERE v = ?, from 4
//     clients; checked with porcupine, partitioned by key. An operation whose
//     outcome the client cannot know (a timeout, a broken connection,
//     OUTCOME_UNKNOWN) gets an infinite return time: it may have happened at
//     any point after its call, or never. An operation the API reports as
//     not proposed (NO_LEADER, NOT_LEADER, a refused statement, a connection
//     that never became ready) is left out.
//   - an append-only set: 3 clients insert unique integers. After the run,
//     with every fault healed and every node converged (equal Checksum at the
//     same applied index), every acknowledged value must be on every node and
//     no value reported as not proposed may be anywhere.
//   - a bank: 5 accounts holding 500; 2 clients move money with one
//     conditional UPDATE in a Request transaction, a reader sums the
//     balances at WEAK, LINEARIZABLE and STRONG. Every sum, during the run
//     and on every node's own copy at the end, must be 500.
//
// Clients pick a node at random for each operation (forwarding does the
// rest) and back off 100 ms after a failure.
//
// # Running
//
// scripts/robustness.sh runs the matrix (every fault × both workloads);
// --short is the CI subset. The seed (ROBUSTNESS_SEED) fixes the clients'
// and the faults' choices; timing still varies run to run. A history that
// is not linearizable is saved as porcupine's HTML visualization, with the
// nodes' logs, in ROBUSTNESS_OUT.
package robustness
