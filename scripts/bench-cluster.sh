#!/usr/bin/env bash
# Starts a 1-node and a 3-node cluster (separate processes on loopback) and
# runs `sqlraft bench` against the leader of each: writes and LINEARIZABLE
# reads, with 1 and 32 clients. Usage: scripts/bench-cluster.sh [DURATION]
set -euo pipefail
# go-sqlite3 must be built with its pre-update hook: the write budget counts
# rows and bytes with it (internal/sqlitedb/budget.go).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10s}
work=$(mktemp -d)
trap 'pkill -f "$work/sqlraftd" 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
cd "$root"
go build -o "$work/sqlraftd" ./cmd/sqlraftd
go build -o "$work/sqlraft" ./cmd/sqlraft

start_cluster() { # size base-port
  local size=$1 base=$2
  "$work/sqlraftd" --node-id n0 --data-dir "$work/c$size/n0" --grpc-addr 127.0.0.1:$base \
    --raft-addr 127.0.0.1:$((base + 1)) --log-level warn 2>>"$work/c$size.log" &
  for i in $(seq 1 $((size - 1))); do
    "$work/sqlraftd" --node-id n$i --data-dir "$work/c$size/n$i" --grpc-addr 127.0.0.1:$((base + 10 * i)) \
      --raft-addr 127.0.0.1:$((base + 10 * i + 1)) --join 127.0.0.1:$base --log-level warn 2>>"$work/c$size.log" &
  done
  for _ in $(seq 1 100); do
    # every member reachable, and one of them leading
    out=$("$work/sqlraft" -a 127.0.0.1:$base nodes 2>/dev/null || true)
    reachable=$(echo "$out" | awk '$6 == "true"' | wc -l)
    leaders=$(echo "$out" | awk '$5 == "true"' | wc -l)
    [ "$reachable" -ge "$size" ] && [ "$leaders" -eq 1 ] && return 0
    sleep 0.2
  done
  echo "cluster of $size did not form" >&2; exit 1
}

for size in 1 3; do
  base=$((7000 + 100 * size))
  start_cluster "$size" "$base"
  for op in write read; do
    for clients in 1 32; do
      echo "nodes=$size $("$work/sqlraft" -a 127.0.0.1:$base bench --op $op --clients $clients --duration "$duration")"
    done
  done
  pkill -f "$work/sqlraftd" || true
  sleep 1
done
