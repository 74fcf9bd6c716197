#!/usr/bin/env bash
# Runs every workload of issue 11's table against a 3-node cluster of
# separate sqlraftd processes on loopback and prints the table: throughput,
# p50 and p99 latency, the peak VmRSS of the leader and of the followers
# (sampled from /proc every 100 ms during each workload), and for the client
# workloads the CPU time (user + system, from /proc/PID/stat) the leader and
# each follower spent per unit of the rate: per write, read, statement or row.
# The CPU a node spends anyway (heartbeats, timers) is in it, so it says most
# where the rate is high.
#
#   scripts/bench-cluster.sh [DURATION] [options]
#
#   DURATION            length of each client workload (default 10s)
#   --rounds N          fresh clusters per build; the table shows medians (default 3)
#   --big-size SIZE     database size for backup and install: 1GiB (default), 200MiB, 512 (MiB)
#   --down DURATION     how long a follower stays down in restart-to-converged (default 30s)
#   --baseline DIR      A/B: DIR holds sqlraftd built from another commit; rounds alternate
#                       between it and this tree's build, and the table shows both and the ratio
#   --rqlite RQLITED    also run rqlite (an rqlited v8 binary) in the same run: rounds alternate
#                       sqlraft, rqlite, (next round) rqlite, sqlraft, ..., and a last table shows
#                       "sqlraft ÷ rqlite" per workload (see scripts/bench-rqlite.sh; no install row)
#   --rqlite-only       with --rqlite: rqlite rounds only (what scripts/bench-rqlite.sh runs)
#   --workloads LIST    only these (comma-separated names from the table's first column)
#   --work DIR          where data directories go (default: a new temporary directory)
#   --pprof             this tree's nodes serve pprof on 127.0.0.1:PORT+5 (see --port-base)
#   --port-base PORT    node i listens on PORT+10i (gRPC) and PORT+10i+1 (Raft) (default 7600)
#   --keep              keep the work directory's logs/ and results.tsv (data directories go after each run)
#   SQLRAFTD_LOG_LEVEL  the nodes' --log-level (default warn)
#
# The client is always this tree's `sqlraft` (the same closed-loop client for
# both builds): C goroutines, each sending its next request when the last
# returns. Reads are `SELECT v FROM sqlraft_bench WHERE id = ?` over 10,000
# rows of 64-byte TEXT values. Workloads, in order, on one cluster per round:
#
#   insert-1, insert-32        one INSERT per request, 1 / 32 clients
#   tx100-1                    100 INSERTs in one transactional Execute, 1 client (statements/s)
#   read-lin-1, read-lin-32    LINEARIZABLE point reads at the leader
#   read-weak-32               WEAK point reads at the leader
#   read-none-follower-32      NONE point reads served by a follower
#   bulk-4                     1,000 INSERTs per transactional Execute, 4 clients (rows/s)
#   restart                    a follower is stopped (SIGTERM) for --down while 4 clients write,
#                              then restarted: seconds until its applied index reaches the leader's
#   backup                     the cluster is filled to --big-size (server-side randomblob INSERTs,
#                              incompressible), then one Backup RPC to a local file, fsynced (MB/s)
#   cp+sync                    the leader's db.sqlite (and WAL) copied with cp, then fsynced
#   install                    more than --trailing-logs small writes (so the log no longer holds
#                              the fill), `sqlraft snapshot`, then a fresh non-voter joins: seconds
#                              from its start until its applied index reaches the leader's
#
# With --rqlite, rqlite gets the same workloads through scripts/rqbench, a
# closed-loop HTTP client with the same model and the same SQL (rqlite's
# levels linearizable, weak and none; ?transaction for tx100 and bulk; GET
# /db/backup for backup); --baseline and --rqlite may be combined.
#
# Numbers are only comparable on the same machine in the same run; other
# load on the machine shows up in them (A/B mode alternates builds per round
# so drift hits both). Needs jq (and curl with --rqlite).
set -euo pipefail
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)

duration=10s rounds=3 big=1GiB down=30s baseline="" only="" work="" pprof="" port_base=7600 keep="" rqlited="" rqlite_only=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --big-size) big=$2; shift 2 ;;
    --down) down=$2; shift 2 ;;
    --baseline) baseline=$(cd "$2" && pwd); shift 2 ;;
    --rqlite) rqlited=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --rqlite-only) rqlite_only=1; shift ;;
    --workloads) only=",$2,"; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --pprof) pprof=1; shift ;;
    --port-base) port_base=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) duration=$1; shift ;;
  esac
done
command -v jq >/dev/null || { echo "bench-cluster.sh needs jq" >&2; exit 2; }
if [ -n "$baseline" ] && [ ! -x "$baseline/sqlraftd" ]; then
  echo "--baseline $baseline holds no sqlraftd" >&2; exit 2
fi
if [ -n "$rqlited" ] && [ ! -x "$rqlited" ]; then echo "--rqlite $rqlited is not executable" >&2; exit 2; fi
if [ -n "$rqlite_only" ] && { [ -z "$rqlited" ] || [ -n "$baseline" ]; }; then
  echo "--rqlite-only needs --rqlite and no --baseline" >&2; exit 2
fi
big_mib=$(echo "$big" | awk '{ v = $0 + 0; u = toupper($0); sub(/^[0-9.]+/, "", u)
  if (u == "" || u == "M" || u == "MB" || u == "MIB") print int(v); else if (u ~ /^G/) print int(v * 1024)
  else { print "bad --big-size " $0 > "/dev/stderr"; exit 1 } }')

[ -n "$work" ] || work=$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster.XXXX")
mkdir -p "$work/logs"
results=$work/results.tsv
: >"$results"
declare -A pid=()
stop_all() {
  for i in "${!pid[@]}"; do kill "${pid[$i]}" 2>/dev/null || true; done
  for i in "${!pid[@]}"; do wait "${pid[$i]}" 2>/dev/null || true; done
  pid=()
}
sampler=""
cleanup() {
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  stop_all
  if [ -n "$keep" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

cd "$root"
builds=()
if [ -z "$rqlite_only" ]; then
  mkdir -p "$work/current"
  go build -o "$work/current/sqlraftd" ./cmd/sqlraftd
  go build -o "$work/sqlraft" ./cmd/sqlraft
  builds=(current)
  [ -z "$baseline" ] || builds+=(baseline)
fi
if [ -n "$rqlited" ]; then
  # shellcheck source=scripts/bench-rqlite.sh
  . "$root/scripts/bench-rqlite.sh"
  rq_build_client
  builds+=(rqlite)
fi
bin_of() { if [ "$1" = baseline ]; then echo "$baseline"; else echo "$work/current"; fi; }

grpc_port() { echo $((port_base + 10 * $1)); }
cli() { "$work/sqlraft" --timeout 30m "$@"; } # cli -a ADDR ...
addr() { echo "127.0.0.1:$(grpc_port "$1")"; }

# start_node BUILD DATA I [FLAG...]: starts node nI (joining n0 unless it is n0).
start_node() {
  local build=$1 data=$2 i=$3
  shift 3
  local flags=(--node-id "n$i" --data-dir "$data/n$i" --grpc-addr "$(addr "$i")"
    --raft-addr "127.0.0.1:$(($(grpc_port "$i") + 1))" --log-level "${SQLRAFTD_LOG_LEVEL:-warn}" "$@")
  [ "$i" -eq 0 ] || flags+=(--join "$(addr 0)")
  [ -z "$pprof" ] || [ "$build" = baseline ] || flags+=(--pprof-addr "127.0.0.1:$(($(grpc_port "$i") + 5))")
  "$(bin_of "$build")/sqlraftd" "${flags[@]}" 2>>"$work/logs/$(basename "$data")-n$i.log" &
  pid[$i]=$!
}

stop_node() { kill "${pid[$1]}" 2>/dev/null || true; wait "${pid[$1]}" 2>/dev/null || true; unset "pid[$1]"; }

# leader prints the leading node's number (nI -> I), asking node 0 or any.
leader() {
  local i id
  for _ in $(seq 1 300); do
    for i in "${!pid[@]}"; do
      id=$(cli -a "$(addr "$i")" -o json nodes 2>/dev/null | jq -r '.nodes[] | select(.leader) | .id' 2>/dev/null || true)
      [ -n "$id" ] && { echo "${id#n}"; return 0; }
    done
    sleep 0.2
  done
  echo "no leader" >&2; return 1
}

# status_field I FIELD: a number from node I's Status (0 when it does not answer).
status_field() { cli -a "$(addr "$1")" -o json status 2>/dev/null | jq -r ".$2 // 0 | tonumber" 2>/dev/null || echo 0; }
applied() { status_field "$1" appliedIndex; }

# wait_caught_up I: until node I has applied what the leader has.
wait_caught_up() {
  local l a
  for _ in $(seq 1 6000); do
    l=$(leader)
    a=$(applied "$1")
    [ "$a" -gt 0 ] && [ "$a" -ge "$(applied "$l")" ] && return 0
    sleep 0.1
  done
  echo "node $1 did not catch up" >&2; return 1
}

start_cluster() { # BUILD DATA
  local i
  start_node "$1" "$2" 0
  sleep 1
  start_node "$1" "$2" 1
  start_node "$1" "$2" 2
  for _ in $(seq 1 300); do
    [ "$(cli -a "$(addr 0)" -o json nodes 2>/dev/null | jq '[.nodes[] | select(.reachable)] | length' 2>/dev/null || echo 0)" -ge 3 ] &&
      { leader >/dev/null; return 0; }
    sleep 0.2
  done
  echo "cluster did not form" >&2; exit 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# sample_start LEADER: samples the leader's and the other nodes' VmRSS every
# 100 ms into $work/rss (max leader, max follower, in KiB) until sample_stop.
# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_now LEADER: the leader's ticks and the followers' (summed).
cpu_now() {
  local l=$1 i lt=0 ft=0
  for i in "${!pid[@]}"; do
    if [ "$i" = "$l" ]; then lt=$(cpu_ticks "${pid[$i]}"); else ft=$((ft + $(cpu_ticks "${pid[$i]}"))); fi
  done
  echo "$lt $ft"
}

sample_start() {
  local l=$1
  echo "0 0" >"$work/rss"
  echo "$l $(cpu_now "$l")" >"$work/cpu0"
  (
    lmax=0 fmax=0
    while :; do
      for i in "${!pid[@]}"; do
        r=$(rss_kib "${pid[$i]}")
        if [ "$i" = "$l" ]; then [ "$r" -le "$lmax" ] || lmax=$r; else [ "$r" -le "$fmax" ] || fmax=$r; fi
      done
      echo "$lmax $fmax" >"$work/rss.tmp" && mv "$work/rss.tmp" "$work/rss"
      sleep 0.1
    done
  ) &
  sampler=$!
}
sample_stop() { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=""; }

# record BUILD WORKLOAD RATE P50 P99 SECONDS [UNITS]: one result line; with
# UNITS (what the workload counted), also the CPU time the leader and each
# follower spent per unit, in microseconds.
record() {
  local b=$1 w=$2 rate=$3 p50=$4 p99=$5 secs=$6 units=${7:-} rss cpu=""
  sample_stop
  rss=$(cat "$work/rss")
  if [ -n "$units" ] && [ "$units" != 0 ]; then
    # shellcheck disable=SC2046
    cpu=$(awk -v tck="$(getconf CLK_TCK)" -v n="$units" -v followers=$((${#pid[@]} - 1)) \
      'NR == 1 { l = $1; l0 = $2; f0 = $3 } END { split(now, c, " ")
        printf "%.1f\t%.1f", (c[1] - l0) / tck * 1e6 / n, (c[2] - f0) / tck * 1e6 / n / (followers > 0 ? followers : 1) }' \
      now="$(cpu_now "$(awk '{print $1}' "$work/cpu0")")" "$work/cpu0")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b" "$w" "$rate" "$p50" "$p99" "$secs" ${rss} "${cpu:-$(printf '\t')}" >>"$results"
  printf '  %-8s %-22s rate=%-10s p50=%-7s p99=%-7s s=%-6s rss(KiB)=%s\n' "$b" "$w" "$rate" "$p50" "$p99" "$secs" "$rss" >&2
}

want() { [ -z "$only" ] || [[ $only == *",$1,"* ]]; }

# bench_row BUILD WORKLOAD TARGET BENCH-ARGS...: one closed-loop workload.
bench_row() {
  local b=$1 w=$2 target=$3 l out
  shift 3
  want "$w" || return 0
  l=$(leader)
  [ "$target" != leader ] || target=$l
  sample_start "$l"
  out=$(cli -a "$(addr "$target")" -o json bench --duration "$duration" --rows 10000 --value-bytes 64 "$@") || true
  if [ -z "$out" ] || [ "$(echo "$out" | jq .errors)" != 0 ]; then
    echo "  $w: errors: $(echo "$out" | jq -r '.errors, .first_error' 2>/dev/null | tr '\n' ' ')" >&2
  fi
  record "$b" "$w" "$(echo "$out" | jq '.units_per_s | floor')" "$(echo "$out" | jq '.p50_ms * 1000 | round / 1000')" \
    "$(echo "$out" | jq '.p99_ms * 1000 | round / 1000')" "" "$(echo "$out" | jq '.units')"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# restart_row BUILD DATA: a follower down for $down under writes, then back.
restart_row() {
  local b=$1 data=$2 l f t0
  want restart || return 0
  l=$(leader)
  f=$(( (l + 1) % 3 ))
  stop_node "$f"
  cli -a "$(addr "$l")" bench --op write --clients 4 --duration "$down" --rows 10000 --value-bytes 64 >/dev/null || true
  t0=$(now)
  start_node "$b" "$data" "$f"
  sample_start "$l"
  wait_caught_up "$f"
  record "$b" restart "" "" "" "$(since "$t0")"
}

# cp_sync_row BUILD LEADER FILE...: the leader's database files copied into
# one file and fsynced, the page cache flushed first.
cp_sync_row() {
  local b=$1 l=$2 t0 secs
  shift 2
  sync
  sample_start "$l"
  t0=$(now)
  cat "$@" >"$work/cp.db" && sync "$work/cp.db"
  secs=$(since "$t0")
  record "$b" cp+sync "$(awk -v s="$(stat -c %s "$work/cp.db")" -v t="$secs" 'BEGIN { printf "%.1f", s / t / 1e6 }')" "" "" "$secs"
  rm -f "$work/cp.db"
}

# big_rows BUILD DATA: fill to --big-size, then backup, cp+sync and install.
big_rows() {
  local b=$1 data=$2 l n t0 size out
  want backup || want cp+sync || want install || return 0
  l=$(leader)
  cli -a "$(addr "$l")" exec "CREATE TABLE IF NOT EXISTS big(b BLOB)" >/dev/null
  t0=$(now)
  for n in $(seq 1 $(( (big_mib + 31) / 32 ))); do # 32 MiB per request, generated on each node
    cli -a "$(addr "$(leader)")" exec "INSERT INTO big SELECT randomblob(32768) FROM (WITH RECURSIVE n(i) AS
      (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1024) SELECT i FROM n)" >/dev/null
  done
  for n in "${!pid[@]}"; do wait_caught_up "$n"; done
  echo "  filled $big_mib MiB in $(since "$t0") s" >&2
  # The fill left gigabytes of dirty pages (each node's WAL) for the kernel
  # to write back; the backup's fsync would wait behind them, and the row
  # would time the fill's writeback (1.3 to 2.1 s from round to round
  # without this). Flush them first, untimed; rqlite's row waits for its
  # snapshot likewise.
  sync
  l=$(leader)
  sample_start "$l"
  out=$(cli -a "$(addr "$l")" -o json bench --op backup --backup-file "$work/backup.db")
  size=$(echo "$out" | jq .units)
  if want backup; then
    record "$b" backup "$(echo "$out" | jq '.mb_per_s * 10 | round / 10')" "" "" "$(echo "$out" | jq '.seconds * 100 | round / 100')"
  else sample_stop; fi
  rm -f "$work/backup.db"
  # shellcheck disable=SC2046
  want cp+sync && cp_sync_row "$b" "$l" $(ls "$data/n$l"/db.sqlite "$data/n$l"/db.sqlite-wal 2>/dev/null)
  if want install; then
    # The new node must get the database from a snapshot, not by replaying
    # the fill's entries (each regenerates 32 MiB locally): write small
    # entries until the fill is more than --trailing-logs (10,240) entries
    # back, then snapshot, which truncates the log past it.
    local fill_end
    fill_end=$(status_field "$l" lastLogIndex)
    while [ "$(status_field "$l" lastLogIndex)" -le $((fill_end + 10240 + 500)) ]; do
      cli -a "$(addr "$l")" bench --op write --clients 32 --duration 2s --rows 10000 --value-bytes 64 >/dev/null || true
    done
    cli -a "$(addr "$l")" snapshot >/dev/null
    [ "$(status_field "$l" firstLogIndex)" -gt "$fill_end" ] ||
      echo "  warning: the leader's log still holds the fill; the new node may replay it instead of installing" >&2
    sync # untimed, as before the backup: the snapshot's and the writes' writeback is not the install's
    t0=$(now)
    start_node "$b" "$data" 3 --non-voter
    sample_start "$l"
    wait_caught_up 3
    local secs
    secs=$(since "$t0")
    record "$b" install "$(awk -v s="$size" -v t="$secs" 'BEGIN { printf "%.1f", s / t / 1e6 }')" "" "" "$secs"
  fi
}

# one_run BUILD ROUND: every workload on a fresh cluster of BUILD.
one_run() {
  local b=$1 data=$work/$1-r$2
  echo "round $2, $b ($(date +%T))" >&2
  mkdir -p "$data"
  start_cluster "$b" "$data"
  bench_row "$b" insert-1 leader --op write --clients 1
  bench_row "$b" insert-32 leader --op write --clients 32
  bench_row "$b" tx100-1 leader --op tx --tx-size 100 --clients 1
  bench_row "$b" read-lin-1 leader --op read --consistency linearizable --clients 1
  bench_row "$b" read-lin-32 leader --op read --consistency linearizable --clients 32
  bench_row "$b" read-weak-32 leader --op read --consistency weak --clients 32
  bench_row "$b" read-none-follower-32 "$(( ($(leader) + 1) % 3 ))" --op read --consistency none --clients 32
  bench_row "$b" bulk-4 leader --op bulk --clients 4
  restart_row "$b" "$data"
  big_rows "$b" "$data"
  stop_all
  rm -rf "$data"
}

for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order=("${builds[@]}"); else order=(); for ((k = ${#builds[@]} - 1; k >= 0; k--)); do order+=("${builds[$k]}"); done; fi
  for b in "${order[@]}"; do if [ "$b" = rqlite ]; then rq_one_run "$r"; else one_run "$b" "$r"; fi; done
done

# The table: medians over rounds, per build.
awk -F'\t' -v builds="${builds[*]}" -v rounds="$rounds" -v big="$big_mib" '
function median(list,   n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  if (n == 0) return ""
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { if (v != "") vals[key] = vals[key] " " v }
{ add($1 SUBSEP $2 SUBSEP "rate", $3); add($1 SUBSEP $2 SUBSEP "p50", $4); add($1 SUBSEP $2 SUBSEP "p99", $5)
  add($1 SUBSEP $2 SUBSEP "s", $6); add($1 SUBSEP $2 SUBSEP "lrss", $7 / 1024); add($1 SUBSEP $2 SUBSEP "frss", $8 / 1024)
  add($1 SUBSEP $2 SUBSEP "lcpu", $9); add($1 SUBSEP $2 SUBSEP "fcpu", $10)
  seen[$2] = 1 }
function m(b, w, k) { return median(vals[b SUBSEP w SUBSEP k]) }
function peak(b, w, k,   n, a, i, x) { n = split(vals[b SUBSEP w SUBSEP k], a, " "); x = ""
  for (i = 1; i <= n; i++) if (x == "" || a[i] + 0 > x) x = a[i] + 0
  return x }
function fmt(v, f) { return v == "" ? "-" : sprintf(f, v) }
BEGIN {
  nw = split("insert-1 insert-32 tx100-1 read-lin-1 read-lin-32 read-weak-32 read-none-follower-32 bulk-4 restart backup cp+sync install", order, " ")
  unit["insert-1"] = "ops/s"; unit["insert-32"] = "ops/s"; unit["tx100-1"] = "stmts/s"; unit["read-lin-1"] = "ops/s"
  unit["read-lin-32"] = "ops/s"; unit["read-weak-32"] = "ops/s"; unit["read-none-follower-32"] = "ops/s"; unit["bulk-4"] = "rows/s"
  unit["restart"] = "-"; unit["backup"] = "MB/s"; unit["cp+sync"] = "MB/s"; unit["install"] = "MB/s"
}
END {
  nb = split(builds, bl, " ")
  printf "medians of %d round(s); big database %d MiB; RSS: MiB, the peak over the workload in every round;\n", rounds, big
  printf "CPU: microseconds of CPU time (user + system) per unit of the rate, on the leader and on each follower\n"
  for (k = 1; k <= nb; k++) {
    b = bl[k]
    printf "\n%s\n", b
    printf "%-22s %8s %10s %8s %8s %8s %11s %13s %11s %13s\n", "workload", "unit", "rate", "p50 ms", "p99 ms", "seconds",
      "leader RSS", "follower RSS", "leader CPU", "follower CPU"
    for (i = 1; i <= nw; i++) { w = order[i]; if (!(w in seen)) continue
      printf "%-22s %8s %10s %8s %8s %8s %11s %13s %11s %13s\n", w, unit[w], fmt(m(b, w, "rate"), "%.1f"), fmt(m(b, w, "p50"), "%.3f"),
        fmt(m(b, w, "p99"), "%.3f"), fmt(m(b, w, "s"), "%.2f"), fmt(peak(b, w, "lrss"), "%.0f"), fmt(peak(b, w, "frss"), "%.0f"),
        fmt(m(b, w, "lcpu"), "%.1f"), fmt(m(b, w, "fcpu"), "%.1f") }
  }
  for (k = 1; k <= nb; k++) has[bl[k]] = 1
  if (("current" in has) && ("baseline" in has)) {
    printf "\n%-22s %8s %12s %12s %9s   (ratio: current/baseline of the rate; for restart, baseline/current seconds: > 1 is better)\n", \
      "workload", "unit", "baseline", "current", "ratio"
    for (i = 1; i <= nw; i++) { w = order[i]; if (!(w in seen)) continue
      k = (w == "restart") ? "s" : "rate"; c = m("current", w, k); o = m("baseline", w, k)
      r = (c == "" || o == "" || c == 0 || o == 0) ? "" : (k == "s" ? o / c : c / o)
      printf "%-22s %8s %12s %12s %9s\n", w, (k == "s" ? "seconds" : unit[w]), fmt(o, "%.1f"), fmt(c, "%.1f"), fmt(r, "%.2f") }
  }
  if (("current" in has) && ("rqlite" in has)) {
    printf "\nsqlraft (current) beside rqlite: rates and \"sqlraft ÷ rqlite\" of the rate (for restart, rqlite ÷ sqlraft seconds): > 1 is better;\n"
    printf "p50 is the latency in ms, or the seconds the row took for restart, backup and cp+sync\n"
    printf "%-22s %8s %12s %12s %16s %12s %12s\n", "workload", "unit", "rqlite", "sqlraft", "sqlraft ÷ rqlite", "rqlite p50", "sqlraft p50"
    for (i = 1; i <= nw; i++) { w = order[i]; if (!(w in seen)) continue
      secs = (w == "restart" || w == "backup" || w == "cp+sync" || w == "install")
      k = (w == "restart") ? "s" : "rate"; c = m("current", w, k); o = m("rqlite", w, k)
      r = (c == "" || o == "" || c == 0 || o == 0) ? "" : (k == "s" ? o / c : c / o)
      q = secs ? "s" : "p50"; f = secs ? "%.2f s" : "%.3f ms"
      printf "%-22s %8s %12s %12s %16s %12s %12s\n", w, (k == "s" ? "seconds" : unit[w]), fmt(o, "%.1f"), fmt(c, "%.1f"),
        fmt(r, "%.2f"), fmt(m("rqlite", w, q), f), fmt(m("current", w, q), f) }
    for (k = 1; k <= nb; k++) { b = bl[k]; if (b == "baseline") continue
      bk = m(b, "backup", "rate"); cp = m(b, "cp+sync", "rate")
      if (bk != "" && cp != "" && cp > 0) printf "%s: backup at %.0f%% of cp+sync speed\n", (b == "current" ? "sqlraft" : b), 100 * bk / cp }
  }
}' "$results"
