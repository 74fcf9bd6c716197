#!/usr/bin/env bash
# Runs the workloads of scripts/bench-cluster.sh against a 3-node rqlite
# cluster on loopback, with the same closed-loop client model, and prints
# the same table (rate, p50, p99, leader/follower peak RSS, CPU µs per unit).
#
#   scripts/bench-rqlite.sh RQLITED [DURATION] [bench-cluster.sh options]
#
# RQLITED is an rqlited binary of rqlite v8, built with cgo (it compiles its own
# SQLite), e.g. from `go mod download -json github.com/rqlite/rqlite/v8@v8.36.0`:
# copy the printed Dir somewhere writable and `go build ./cmd/rqlited` there,
# without sqlraft's GOFLAGS. Run directly, this
# is `scripts/bench-cluster.sh --rqlite RQLITED --rqlite-only ...`: rounds of
# rqlite alone. `scripts/bench-cluster.sh --rqlite RQLITED` runs sqlraft and
# rqlite rounds alternately in one run and adds a "sqlraft ÷ rqlite" table.
#
# The nodes listen on 127.0.0.1 only: node i serves HTTP on PORT+10i and Raft
# on PORT+10i+1 (bench-cluster.sh's --port-base), start with -bootstrap-expect 3
# and -join on all three Raft addresses, and keep rqlite's defaults otherwise
# (on-disk SQLite in WAL mode, BoltDB Raft log, automatic snapshots). The
# cluster counts as up when every node names the same leader.
#
# The client is scripts/rqbench (standard library only, built into the work
# directory): it creates the table sqlraft_bench and its 10,000 rows of 64-byte
# TEXT values as `sqlraft bench` does, and sends the same SQL with parameters in
# rqlite's JSON array form ([["SELECT v FROM sqlraft_bench WHERE id = ?", 5]]):
#
#   insert-1, insert-32        POST /db/execute, one INSERT per request
#   tx100-1                    POST /db/execute?transaction, 100 INSERTs per request (statements/s)
#   read-lin-1, read-lin-32    POST /db/query?level=linearizable at the leader
#   read-weak-32               level=weak at the leader
#   read-none-follower-32      level=none at a follower (served there)
#   bulk-4                     1,000 INSERTs per request with ?transaction, 4 clients (rows/s)
#   restart                    a follower stopped (SIGTERM) for --down under 4 writing clients, then
#                              restarted with the same flags: seconds until its applied index reaches
#                              the leader's
#   backup                     filled to --big-size by server-side randomblob INSERTs (with
#                              ?norwrandom, so each node generates its own data as sqlraft's do),
#                              then one GET /db/backup saved to a local file and fsynced (MB/s);
#                              first the script waits (at most 60 s) until rqlite's periodic snapshot
#                              has emptied the leader's WAL, since rqlite's backup would otherwise
#                              start by snapshotting the fill's tail; an attempt that meets a snapshot
#                              in progress fails in rqlite, so the row times the first that succeeds
#   cp+sync                    the leader's db.sqlite (and WAL) copied, then fsynced
#
# There is no install row for rqlite. Needs curl and jq.
#
# When sourced by bench-cluster.sh this file only defines the rq_* functions,
# which use that script's helpers (pid, sample_start, record, want, ...).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# -ge 1 ] && [ "${1#-}" = "$1" ] || { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
  rqlited=$1
  shift
  exec "$(dirname "$0")/bench-cluster.sh" --rqlite "$rqlited" --rqlite-only "$@"
fi

command -v curl >/dev/null || { echo "--rqlite needs curl" >&2; exit 2; }

# rq_build_client: builds scripts/rqbench into the work directory.
rq_build_client() { (cd "$root/scripts/rqbench" && go build -o "$work/rqbench" .); }

# rq_http I TIMEOUT PATH [CURL-ARGS...]: a request to node I's HTTP API.
rq_http() {
  local i=$1 t=$2 path=$3
  shift 3
  curl -sS --max-time "$t" "$@" "http://$(addr "$i")$path"
}

# rq_start_node DATA I: starts rqlite node nI.
rq_start_node() {
  local data=$1 i=$2 j joins=()
  for j in 0 1 2; do joins+=("127.0.0.1:$(($(grpc_port "$j") + 1))"); done
  "$rqlited" -node-id "n$i" -http-addr "$(addr "$i")" -raft-addr "127.0.0.1:$(($(grpc_port "$i") + 1))" \
    -bootstrap-expect 3 -join "$(IFS=,; echo "${joins[*]}")" "$data/n$i" \
    >>"$work/logs/$(basename "$data")-n$i.log" 2>&1 &
  pid[$i]=$!
}

# rq_leader_of I: the leader node I names (nJ -> J), empty if none.
rq_leader_of() {
  local id
  id=$(rq_http "$1" 5 /status 2>/dev/null | jq -r '.store.leader.node_id // empty' 2>/dev/null || true)
  echo "${id#n}"
}

# rq_leader prints the leading node's number.
rq_leader() {
  local i id
  for _ in $(seq 1 300); do
    for i in "${!pid[@]}"; do
      id=$(rq_leader_of "$i")
      [ -n "$id" ] && { echo "$id"; return 0; }
    done
    sleep 0.2
  done
  echo "no rqlite leader" >&2; return 1
}

rq_applied() {
  rq_http "$1" 5 /status 2>/dev/null | jq -r '.store.raft.applied_index // 0 | tonumber' 2>/dev/null || echo 0
}

# rq_wait_caught_up I: until node I has applied what the leader has.
rq_wait_caught_up() {
  local l a
  for _ in $(seq 1 6000); do
    l=$(rq_leader)
    a=$(rq_applied "$1")
    [ "$a" -gt 0 ] && [ "$a" -ge "$(rq_applied "$l")" ] && return 0
    sleep 0.1
  done
  echo "rqlite node $1 did not catch up" >&2; return 1
}

# rq_start_cluster DATA: three nodes, until each names the same leader.
rq_start_cluster() {
  local i l ok
  for i in 0 1 2; do rq_start_node "$1" "$i"; done
  for _ in $(seq 1 600); do
    ok=1 l=$(rq_leader_of 0)
    [ -n "$l" ] || ok=""
    for i in 1 2; do [ "$(rq_leader_of "$i")" = "$l" ] || ok=""; done
    [ -z "$ok" ] || return 0
    sleep 0.2
  done
  echo "rqlite cluster did not form" >&2; exit 1
}

rq_client() { "$work/rqbench" -timeout 30m "$@"; }

# rq_bench_row WORKLOAD TARGET RQBENCH-ARGS...: one closed-loop workload.
rq_bench_row() {
  local w=$1 target=$2 l out
  shift 2
  want "$w" || return 0
  l=$(rq_leader)
  [ "$target" != leader ] || target=$l
  sample_start "$l"
  out=$(rq_client -addr "$(addr "$target")" -duration "$duration" -rows 10000 -value-bytes 64 "$@") || true
  if [ -z "$out" ] || [ "$(echo "$out" | jq .errors)" != 0 ]; then
    echo "  $w: errors: $(echo "$out" | jq -r '.errors, .first_error' 2>/dev/null | tr '\n' ' ')" >&2
  fi
  record rqlite "$w" "$(echo "$out" | jq '.units_per_s | floor')" "$(echo "$out" | jq '.p50_ms * 1000 | round / 1000')" \
    "$(echo "$out" | jq '.p99_ms * 1000 | round / 1000')" "" "$(echo "$out" | jq '.units')"
}

# rq_restart_row DATA: a follower down for $down under writes, then back.
rq_restart_row() {
  local data=$1 l f t0
  want restart || return 0
  l=$(rq_leader)
  f=$(( (l + 1) % 3 ))
  stop_node "$f"
  rq_client -addr "$(addr "$l")" -op write -clients 4 -duration "$down" >/dev/null || true
  t0=$(now)
  rq_start_node "$data" "$f"
  sample_start "$l"
  rq_wait_caught_up "$f"
  record rqlite restart "" "" "" "$(since "$t0")"
}

# rq_big_rows DATA: fill to --big-size, then backup and cp+sync.
rq_big_rows() {
  local data=$1 l n t0 out fill try
  want backup || want cp+sync || return 0
  l=$(rq_leader)
  fill='[["CREATE TABLE IF NOT EXISTS big(b BLOB)"],["INSERT INTO big SELECT randomblob(32768) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1024) SELECT i FROM n)"]]'
  t0=$(now)
  for n in $(seq 1 $(( (big_mib + 31) / 32 ))); do # 32 MiB per request, generated on each node
    for try in $(seq 1 10); do # a request that meets an election fails ("leader not found"): again
      out=$(rq_http "$(rq_leader)" 600 '/db/execute?norwrandom' -XPOST -H 'Content-Type: application/json' -d "$fill" || true)
      echo "$out" | jq -e '[.results[] | select(.error)] | length == 0' >/dev/null 2>&1 && break
      echo "  fill request $n, attempt $try: $out" >&2
      sleep 1
    done
  done
  for n in "${!pid[@]}"; do rq_wait_caught_up "$n"; done
  echo "  filled $big_mib MiB in $(since "$t0") s" >&2
  l=$(rq_leader)
  # rqlite's backup first snapshots whatever the WAL holds; right after the
  # fill that is the fill's tail. Wait (at most 60 s) for rqlite's periodic
  # snapshot to empty the WAL, so the row times a backup in its usual state.
  t0=$(now)
  for _ in $(seq 1 600); do
    [ "$(stat -c %s "$data/n$l/db.sqlite-wal" 2>/dev/null || echo 0)" -gt 0 ] || break
    sleep 0.1
  done
  echo "  waited $(since "$t0") s for the leader's WAL to empty ($(stat -c %s "$data/n$l/db.sqlite-wal" 2>/dev/null || echo 0) bytes left)" >&2
  sync # as bench-cluster.sh does: the row times the backup, not the fill's writeback
  # A backup that meets a snapshot in progress fails ("CAS conflict"): the
  # row times the first attempt that succeeds (at most 20, 0.5 s apart).
  for n in $(seq 1 20); do
    sample_start "$l"
    out=$(rq_client -addr "$(addr "$l")" -op backup -backup-file "$work/backup.db")
    [ "$(echo "$out" | jq .errors)" != 0 ] || break
    echo "  backup attempt $n: $(echo "$out" | jq -r .first_error)" >&2
    sample_stop
    sleep 0.5
  done
  if want backup; then
    record rqlite backup "$(echo "$out" | jq '(.mb_per_s // empty) * 10 | round / 10')" "" "" \
      "$(echo "$out" | jq 'if .errors == 0 then .seconds * 100 | round / 100 else empty end')"
  else sample_stop; fi
  rm -f "$work/backup.db"
  want cp+sync || return 0
  # shellcheck disable=SC2046
  cp_sync_row rqlite "$l" $(ls "$data/n$l"/db.sqlite "$data/n$l"/db.sqlite-wal 2>/dev/null)
}

# rq_one_run ROUND: every workload on a fresh rqlite cluster.
rq_one_run() {
  local data=$work/rqlite-r$1
  echo "round $1, rqlite ($(date +%T))" >&2
  mkdir -p "$data"
  rq_start_cluster "$data"
  rq_bench_row insert-1 leader -op write -clients 1
  rq_bench_row insert-32 leader -op write -clients 32
  rq_bench_row tx100-1 leader -op tx -tx-size 100 -clients 1
  rq_bench_row read-lin-1 leader -op read -consistency linearizable -clients 1
  rq_bench_row read-lin-32 leader -op read -consistency linearizable -clients 32
  rq_bench_row read-weak-32 leader -op read -consistency weak -clients 32
  rq_bench_row read-none-follower-32 "$(( ($(rq_leader) + 1) % 3 ))" -op read -consistency none -clients 32
  rq_bench_row bulk-4 leader -op bulk -clients 4
  rq_restart_row "$data"
  rq_big_rows "$data"
  stop_all
  rm -rf "$data"
}
