#!/usr/bin/env bash
# Measures a snapshot install of a large database between real processes:
# a 3-node cluster on loopback is filled with SIZE_MB of data, one follower
# is stopped while the leader snapshots and truncates its log, then the
# follower restarts and must install the leader's snapshot. Prints the
# install time, the leader's peak RSS while it streams (sampled from /proc),
# and the time to copy the database file on the same disk for comparison.
# "Install" is timed from the leader's last "installing snapshot" log line to
# the follower's "Installed remote snapshot"; "restart to converged" also
# includes Raft's retry backoff towards a peer that was down.
#   scripts/install-rss.sh [SIZE_MB]   (default 1024)
set -euo pipefail
# go-sqlite3 must be built with its pre-update hook: the write budget counts
# rows and bytes with it (internal/sqlitedb/budget.go).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${1:-1024}
work=${SQLRAFT_RSS_WORK:-$(mktemp -d -p "$root" .install-rss.XXXX)}
trap 'pkill -f "$work/sqlraftd" 2>/dev/null || true; sleep 1; [ -n "${SQLRAFT_RSS_KEEP:-}" ] || rm -rf "$work"' EXIT
cd "$root"
go build -o "$work/sqlraftd" ./cmd/sqlraftd
go build -o "$work/sqlraft" ./cmd/sqlraft
cli() { "$work/sqlraft" -a 127.0.0.1:7401 --timeout 10m "$@"; }
flags=(--snapshot-threshold 8 --trailing-logs 4 --snapshot-interval 1s --log-level info)
start_node() { # i
  local i=$1 join=()
  [ "$i" -gt 0 ] && join=(--join 127.0.0.1:7401)
  "$work/sqlraftd" --node-id n$i --data-dir "$work/n$i" --grpc-addr 127.0.0.1:$((7401 + 10 * i)) \
    --raft-addr 127.0.0.1:$((7402 + 10 * i)) "${flags[@]}" "${join[@]}" 2>>"$work/n$i.log" &
  echo $! >"$work/n$i.pid"
}
wait_nodes() {
  for _ in $(seq 1 150); do
    [ "$(cli nodes 2>/dev/null | awk '$6 == "true"' | wc -l)" -ge 3 ] && return 0
    sleep 0.2
  done
  echo "cluster did not form" >&2; exit 1
}
for i in 0 1 2; do start_node $i; [ $i -eq 0 ] && sleep 2; done
wait_nodes
cli exec "CREATE TABLE big(b BLOB)" >/dev/null
echo "filling ${size_mb} MB ($(date +%T))"
for _ in $(seq 1 $(( size_mb / 32 ))); do
  cli exec "INSERT INTO big SELECT randomblob(32768) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1024) SELECT i FROM n)" >/dev/null
done
kill "$(cat "$work/n2.pid")"; wait "$(cat "$work/n2.pid")" 2>/dev/null || true
for _ in $(seq 1 20); do cli exec "INSERT INTO big VALUES(x'00')" >/dev/null; done
cli snapshot >/dev/null
sleep 2
leader_pid=$(cat "$work/n0.pid")
db_bytes=$(stat -c %s "$work/n0/db.sqlite")
echo "leader database: $((db_bytes / 1048576)) MB; leader RSS before install: $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$leader_pid/status)"
t0=$(date +%s.%N)
start_node 2
peak=0
while :; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$leader_pid/status)
  [ "$rss" -gt "$peak" ] && peak=$rss
  a=$("$work/sqlraft" -a 127.0.0.1:7401 checksum 2>/dev/null | cut -d' ' -f1,4)
  b=$("$work/sqlraft" -a 127.0.0.1:7421 checksum 2>/dev/null | cut -d' ' -f1,4 || true)
  [ -n "$b" ] && [ "$a" = "$b" ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
logtime() { grep -h "$1" "$2" | tail -1 | sed -E 's/^time=([^ ]+).*/\1/' | xargs -I{} date -d {} +%s.%N; }
s0=$(logtime "installing snapshot on: peer=n2" "$work/n0.log")
s1=$(logtime "Installed remote snapshot" "$work/n2.log")
sync
c0=$(date +%s.%N); cp "$work/n0/db.sqlite" "$work/copy.db"; sync; c1=$(date +%s.%N)
awk -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" -v s="$(echo "$s1 - $s0" | bc)" \
  -v mb="$((db_bytes / 1048576))" -v peak="$peak" 'BEGIN {
  printf "install of %d MB: stream + restore %.1f s (%.0f MB/s); restart to converged %.1f s\n", mb, s, mb / s, t
  t = s
  printf "cp + sync of the same file: %.1f s (%.0f MB/s); install/copy time ratio %.2f\n", c, mb / c, t / c
  printf "leader peak RSS during the install: %.0f MB\n", peak / 1024 }'
