#!/usr/bin/env bash
# Measures what observability costs writes: a 3-node cluster of separate
# processes on loopback, `sqlraft bench --op write` against the leader with 1
# and 8 clients, alternating runs with no pollers and with 4 Checksum + 4
# Status pollers (also on the leader), RUNS runs of each. Every (clients)
# setting gets a fresh cluster. Prints one line per run and the medians.
# Usage: scripts/bench-pollers.sh [DURATION] [RUNS]
# POLL_INTERVAL=10ms makes each poller pause between calls (default: back
# to back). POLLERS="--status-pollers 4" changes what polls.
# SQLRAFTD=path/to/sqlraftd measures another server build (say, an older
# commit) with this tree's bench client.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10s}
runs=${2:-3}
work=$(mktemp -d)
pids=()
stop_cluster() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT
cd "$root"
go build -o "$work/sqlraft" ./cmd/sqlraft
if [ -n "${SQLRAFTD:-}" ]; then cp "$SQLRAFTD" "$work/sqlraftd"; else go build -o "$work/sqlraftd" ./cmd/sqlraftd; fi

start_cluster() { # data-dir base-port
  local dir=$1 base=$2
  "$work/sqlraftd" --node-id n0 --data-dir "$dir/n0" --grpc-addr 127.0.0.1:$base \
    --raft-addr 127.0.0.1:$((base + 1)) --log-level warn 2>>"$work/cluster.log" &
  pids+=($!)
  for i in 1 2; do
    "$work/sqlraftd" --node-id n$i --data-dir "$dir/n$i" --grpc-addr 127.0.0.1:$((base + 10 * i)) \
      --raft-addr 127.0.0.1:$((base + 10 * i + 1)) --join 127.0.0.1:$base --log-level warn 2>>"$work/cluster.log" &
    pids+=($!)
  done
  for _ in $(seq 1 150); do
    out=$("$work/sqlraft" -a 127.0.0.1:$base nodes 2>/dev/null || true)
    reachable=$(echo "$out" | awk '$6 == "true"' | wc -l)
    leaders=$(echo "$out" | awk '$5 == "true"' | wc -l)
    [ "$reachable" -ge 3 ] && [ "$leaders" -eq 1 ] && return 0
    sleep 0.2
  done
  echo "cluster did not form" >&2; exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

base=7300
for clients in 1 8; do
  start_cluster "$work/c$clients" $base
  : >"$work/none" ; : >"$work/polled"
  for r in $(seq 1 "$runs"); do
    for mode in none polled; do
      extra=()
      # shellcheck disable=SC2206
      [ "$mode" = polled ] && extra=(${POLLERS:---checksum-pollers 4 --status-pollers 4} --poll-interval "${POLL_INTERVAL:-0s}")
      line=$("$work/sqlraft" -a 127.0.0.1:$base bench --op write --clients "$clients" --duration "$duration" "${extra[@]}")
      echo "clients=$clients run=$r pollers=$mode $line"
      echo "$line" | sed -n 's/.*ops\/s=\([0-9.]*\).*/\1/p' | head -1 >>"$work/$mode"
    done
  done
  none=$(median <"$work/none"); polled=$(median <"$work/polled")
  echo "SUMMARY clients=$clients median writes/s: no pollers $none, pollers ($(echo ${POLLERS:-4 checksum + 4 status}) every ${POLL_INTERVAL:-0s}) $polled, ratio $(awk -v a="$polled" -v b="$none" 'BEGIN {printf "%.2f", a / b}')"
  stop_cluster
  base=$((base + 100))
done
