#!/usr/bin/env bash
# Measures `sqlraft backup` of a large database between real processes: a
# 3-node cluster on loopback is filled with SIZE_MB of data, then the leader
# is backed up RUNS times (the client writes the file and fsyncs it, as the
# CLI always does) and its database file is copied RUNS times with cp + sync
# for comparison, alternating (after one untimed backup: the first
# snapshot after a start is full). Prints each run, the medians, the
# leader's CPU time per backup and its peak RSS during the backups (sampled
# from /proc every 50 ms).
#   scripts/backup-bench.sh [SIZE_MB] [RUNS]   (default 1024, 3)
set -euo pipefail
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${1:-1024}
runs=${2:-3}
work=$(mktemp -d -p "${TMPDIR:-/tmp}" backup-bench.XXXX)
pids=()
cleanup() {
  stop_cluster 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# SQLRAFT_BENCH_BINS="dirA dirB" measures each build in turn (prebuilt
# sqlraftd and sqlraft in each dir) on the same data: the cluster is filled
# once, then restarted with each build.
bins=${SQLRAFT_BENCH_BINS:-$work}
if [ -z "${SQLRAFT_BENCH_BINS:-}" ]; then
  (cd "$root" && go build -o "$work/sqlraftd" ./cmd/sqlraftd && go build -o "$work/sqlraft" ./cmd/sqlraft)
fi
bin=${bins%% *}
cli() { "$bin/sqlraft" -a 127.0.0.1:7501 --timeout 10m "$@"; }
start_cluster() {
  pids=()
  for i in 0 1 2; do
    join=()
    [ "$i" -gt 0 ] && join=(--join 127.0.0.1:7501)
    "$bin/sqlraftd" --node-id n$i --data-dir "$work/n$i" --grpc-addr 127.0.0.1:$((7501 + 10 * i)) \
      --raft-addr 127.0.0.1:$((7502 + 10 * i)) --log-level warn "${join[@]}" 2>>"$work/n$i.log" &
    pids+=($!)
    [ "$i" -eq 0 ] && sleep 2
  done
  for _ in $(seq 1 300); do
    out=$(cli nodes 2>/dev/null || true)
    [ "$(echo "$out" | awk '$6 == "true"' | wc -l)" -ge 3 ] && [ "$(echo "$out" | awk '$5 == "true"' | wc -l)" -eq 1 ] && return 0
    sleep 0.2
  done
  echo "cluster did not form" >&2; exit 1
}
stop_cluster() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
start_cluster
cli exec "CREATE TABLE big(b BLOB)" >/dev/null
echo "filling ${size_mb} MB ($(date +%T))"
for _ in $(seq 1 $((size_mb / 32))); do
  cli exec "INSERT INTO big SELECT randomblob(32768) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1024) SELECT i FROM n)" >/dev/null
done
cli snapshot >/dev/null
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
measure() {
  local leader peak=0 backups=() copies=() cpus=() leader_addr
  # the leader's pid: the node whose gRPC address `nodes` marks as leader
  leader_addr=$(cli nodes | awk '$5 == "true" {print $2}')
  for i in 0 1 2; do [ "127.0.0.1:$((7501 + 10 * i))" = "$leader_addr" ] && leader=${pids[$i]} && li=$i; done
  db_bytes=$(stat -c %s "$work/n$li/db.sqlite")
  echo "build $bin: leader n$li, database $db_bytes bytes, RSS before $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$leader/status)"
  # The first snapshot after a start is full (it copies the database): take
  # it before the timed runs, which then find nothing new to snapshot.
  "$bin/sqlraft" -a "$leader_addr" --timeout 10m backup "$work/warm.db" >/dev/null
  rm -f "$work/warm.db"
  # the leader's CPU time (user + system) so far, in seconds: less at the
  # mercy of other load on the machine than the elapsed time
  cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' /proc/$leader/stat; }
  sample() { while :; do awk '/VmRSS/ {print $2}' /proc/$leader/status; sleep 0.05; done; }
  for r in $(seq 1 "$runs"); do
    sync
    sample >"$work/rss.$r" &
    sampler=$!
    u0=$(cpu_s)
    t0=$(now); "$bin/sqlraft" -a "$leader_addr" --timeout 10m backup "$work/backup.db" >/dev/null; t1=$(now)
    u=$(echo "$(cpu_s) - $u0" | bc)
    cpus+=("$u")
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    p=$(sort -n "$work/rss.$r" | tail -1)
    [ "$p" -gt "$peak" ] && peak=$p
    rm -f "$work/backup.db"; sync
    c0=$(now); cp "$work/n$li/db.sqlite" "$work/copy.db"; sync; c1=$(now)
    rm -f "$work/copy.db"
    b=$(echo "$t1 - $t0" | bc) c=$(echo "$c1 - $c0" | bc)
    backups+=("$b") copies+=("$c")
    echo "  run $r: backup ${b} s (leader CPU ${u} s), cp+sync ${c} s"
  done
  awk -v b="$(median "${backups[@]}")" -v c="$(median "${copies[@]}")" -v n="$db_bytes" -v peak="$peak" 'BEGIN {
    printf "  median backup %.2f s (%.0f MB/s); median cp+sync %.2f s (%.0f MB/s); backup speed = %.0f%% of cp+sync\n",
      b, n / b / 1e6, c, n / c / 1e6, 100 * c / b
    printf "  leader peak RSS during the backups: %.0f MiB\n", peak / 1024 }'
  echo "  median leader CPU per backup: $(median "${cpus[@]}") s"
}
first=1
for bin in $bins; do
  if [ $first -eq 0 ]; then stop_cluster; start_cluster; fi
  first=0
  measure
done
