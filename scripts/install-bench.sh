#!/usr/bin/env bash
# Measures, on a 3-node cluster of sqlraftd processes on loopback:
#
#   install SIZE_MB [RUNS]   a follower whose data directory was wiped
#                            installs the leader's snapshot of a SIZE_MB
#                            database: install time (the leader's
#                            "installing snapshot on" log line to the
#                            follower's "Installed remote snapshot"), time
#                            from the follower's start to its applied index
#                            reaching the leader's, leader and follower peak
#                            RSS (VmHWM, reset on the leader before each run),
#                            and cp + sync (fsync of the copy) of the
#                            leader's database file on the same disk, for
#                            comparison.
#   restart DOWN_S [RUNS]    a follower is stopped for DOWN_S seconds while a
#                            client writes, then restarted: time from its
#                            start to serving its first request, and to its
#                            applied index reaching the leader's.
#
# SQLRAFTD / SQLRAFT name other binaries to measure (an older build); by
# default both are built from this checkout. Every process is stopped by its
# PID on exit.
#   scripts/install-bench.sh install 1024 3
#   scripts/install-bench.sh restart 45 3
set -euo pipefail
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?install or restart}
arg=${2:?size in MB or seconds down}
runs=${3:-3}
work=$(mktemp -d -p "${TMPDIR:-/tmp}" install-bench.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${SQLRAFTD:-}" ]; then
  (cd "$root" && go build -o "$work/" ./cmd/sqlraftd ./cmd/sqlraft)
  SQLRAFTD=$work/sqlraftd SQLRAFT=$work/sqlraft
fi
cli() { "$SQLRAFT" -a "$1" --timeout 10m "${@:2}"; }
base=${BASE_PORT:-17600}
gaddr() { echo "127.0.0.1:$((base + 1 + 10 * $1))"; }
flags=(--snapshot-threshold 64 --trailing-logs 16 --snapshot-interval 1s --log-level info)
declare -A pid
start_node() { # i
  local i=$1 join=()
  [ "$i" -gt 0 ] && join=(--join "$(gaddr 0)")
  "$SQLRAFTD" --node-id "n$i" --data-dir "$work/n$i" --grpc-addr "$(gaddr "$i")" \
    --raft-addr "127.0.0.1:$((base + 2 + 10 * i))" "${flags[@]}" "${join[@]}" 2>>"$work/n$i.log" &
  pid[$i]=$!
  pids+=("$!")
}
stop_node() { kill "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }
now() { date +%s.%N; }
field() { cli "$1" status -o json 2>/dev/null | sed -nE "s/.*\"$2\": *\"?([^\",]*)\"?.*/\1/p" | head -1; }
leader_index() { # the number of the leading node, asked of any running node
  local i l
  for _ in $(seq 1 600); do
    for i in 0 1 2; do
      l=$(cli "$(gaddr "$i")" status -o json 2>/dev/null | sed -nE 's/.*"leaderId": *"n([0-9])".*/\1/p' | head -1)
      [ -n "$l" ] && echo "$l" && return 0
    done
    sleep 0.1
  done
  echo "no leader" >&2
  exit 1
}
wait_formed() {
  for _ in $(seq 1 300); do
    [ "$(cli "$(gaddr 0)" nodes 2>/dev/null | awk '$6 == "true"' | wc -l)" -ge 3 ] && return 0
    sleep 0.2
  done
  echo "cluster did not form" >&2
  exit 1
}
# wait_converged i: until node i's applied index reaches the leader's.
wait_converged() {
  local l
  while :; do
    l=$(leader_index)
    local want got
    want=$(field "$(gaddr "$l")" appliedIndex)
    got=$(field "$(gaddr "$1")" appliedIndex)
    [ -n "$got" ] && [ -n "$want" ] && [ "$got" -ge "$want" ] && return 0
    sleep 0.05
  done
}
logtime() { grep -h "$1" "$2" | tail -1 | sed -E 's/^time=([^ ]+).*/\1/' | xargs -I{} date -d {} +%s.%N; }
hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

for i in 0 1 2; do
  start_node "$i"
  [ "$i" -eq 0 ] && sleep 2
done
wait_formed

case $mode in
install)
  cli "$(gaddr 0)" exec "CREATE TABLE big(b BLOB)" >/dev/null
  echo "filling $arg MB"
  for _ in $(seq 1 $((arg / 32))); do
    cli "$(gaddr 0)" exec "INSERT INTO big SELECT randomblob(32768) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1024) SELECT i FROM n)" >/dev/null
  done
  for run in $(seq 1 "$runs"); do
    l=$(leader_index)
    f=$(((l + 1) % 3))
    stop_node "$f"
    rm -rf "$work/n$f"
    : >"$work/n$f.log"
    for _ in $(seq 1 80); do cli "$(gaddr "$l")" exec "INSERT INTO big VALUES(x'00')" >/dev/null; done
    cli "$(gaddr "$l")" snapshot >/dev/null
    sleep 2
    db=$(stat -c %s "$work/n$l/db.sqlite")
    echo 5 >"/proc/${pid[$l]}/clear_refs" # reset the leader's VmHWM
    if [ -n "${PERF:-}" ]; then # profile the whole machine during the install
      perf record -q -a -g -F 499 -o "$work/perf-$run.data" 2>/dev/null &
      perf_pid=$!
    fi
    t0=$(now)
    start_node "$f"
    wait_converged "$f"
    t1=$(now)
    if [ -n "${PERF:-}" ]; then
      kill -INT "$perf_pid"
      wait "$perf_pid" || true
      echo "profile: $work/perf-$run.data (leader pid ${pid[$l]}, follower pid ${pid[$f]})"
    fi
    s0=$(logtime "installing snapshot on\" component=raft peer=n$f " "$work/n$l.log")
    s1=$(logtime "Installed remote snapshot" "$work/n$f.log")
    # A follower that moved the snapshot into its database takes a full
    # snapshot right after: let it finish, so the copy below has the disk
    # to itself.
    if grep -q "snapshot pulled" "$work/n$f.log"; then
      for _ in $(seq 1 600); do
        [ "$(grep -A1000 "Installed remote snapshot" "$work/n$f.log" | grep -c "snapshot complete up to")" -gt 0 ] && break
        sleep 0.1
      done
    fi
    sync # untimed: flush what the install (and the snapshot after it) left dirty
    c0=$(now)
    cp "$work/n$l/db.sqlite" "$work/copy.db"
    sync "$work/copy.db" # fsync of the copy only
    c1=$(now)
    rm -f "$work/copy.db"
    awk -v run="$run" -v mb="$(echo "$db / 1048576" | bc)" -v s="$(echo "$s1 - $s0" | bc)" \
      -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" -v lr="$(hwm "${pid[$l]}")" \
      -v fr="$(hwm "${pid[$f]}")" 'BEGIN {
      printf "run %d: install of %d MiB %.2f s (%.0f MB/s); start to converged %.2f s; cp+sync %.2f s (%.0f MB/s); install/cp %.2f; peak RSS leader %d MB, follower %d MB\n",
        run, mb, s, mb * 1.048576 / s, t, c, mb * 1.048576 / c, c / s, lr, fr }'
  done
  ;;
restart)
  cli "$(gaddr 0)" exec "CREATE TABLE t(v)" >/dev/null
  for run in $(seq 1 "$runs"); do
    l=$(leader_index)
    f=$(((l + 1) % 3))
    (while :; do cli "$(gaddr "$l")" exec "INSERT INTO t VALUES(randomblob(100))" >/dev/null 2>&1 || true; sleep 0.01; done) &
    writer=$!
    pids+=("$writer")
    stop_node "$f"
    sleep "$arg"
    t0=$(now)
    start_node "$f"
    "$SQLRAFT" -a "$(gaddr "$f")" --timeout 5m wait >/dev/null 2>&1 || true
    t1=$(now)
    wait_converged "$f"
    t2=$(now)
    kill "$writer"
    wait "$writer" 2>/dev/null || true
    awk -v run="$run" -v d="$arg" -v w="$(echo "$t1 - $t0" | bc)" -v t="$(echo "$t2 - $t0" | bc)" 'BEGIN {
      printf "run %d: down %d s under writes; start to SERVING %.2f s; start to converged %.2f s\n", run, d, w, t }'
  done
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
