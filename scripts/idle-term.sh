#!/usr/bin/env bash
# Measures how often an idle 3-node cluster elects a leader: starts three
# sqlraftd processes on loopback, waits until they form a cluster, and
# reports the Raft term when it formed and SECONDS later. A cluster that
# nobody touches should stay in one term; every extra term is an election
# that clients would have seen as UNAVAILABLE (NO_LEADER or OUTCOME_UNKNOWN).
# It also samples, twice a second, how long each follower has gone without
# hearing from the leader, and reports the longest silence seen: the margin
# left to --raft-heartbeat-timeout.
#
# Usage: scripts/idle-term.sh SECONDS [SQLRAFTD FLAG...]
#   The flags go to every node, e.g. the hashicorp/raft defaults:
#   scripts/idle-term.sh 120 --raft-heartbeat-timeout 1s \
#     --raft-election-timeout 1s --raft-leader-lease-timeout 500ms
# Run it beside a load to see what a busy machine does to the timeouts:
#   stress-ng --cpu 4 --timeout 150s & scripts/idle-term.sh 120
# IDLE_TERM_PORT (default 7600) is the first of the ports it uses
# (PORT, PORT+1, PORT+10, PORT+11, PORT+20, PORT+21).
set -euo pipefail
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
seconds=${1:?usage: scripts/idle-term.sh SECONDS [SQLRAFTD FLAG...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
base=${IDLE_TERM_PORT:-7600}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$root"
go build -o "$work/sqlraftd" ./cmd/sqlraftd
go build -o "$work/sqlraft" ./cmd/sqlraft

addr() { echo "127.0.0.1:$((base + 10 * $1 + $2))"; } # node, 0 = client API / 1 = Raft
for i in 0 1 2; do
  join=()
  [ "$i" -gt 0 ] && join=(--join "$(addr 0 0)")
  "$work/sqlraftd" --node-id "n$i" --data-dir "$work/n$i" --grpc-addr "$(addr "$i" 0)" \
    --raft-addr "$(addr "$i" 1)" "${join[@]}" --log-level warn "$@" 2>>"$work/n$i.log" &
  pids+=($!)
done

# term NODE prints the node's Raft term (empty when it does not answer).
term() {
  "$work/sqlraft" -a "$(addr "$1" 0)" --timeout 5s status 2>/dev/null |
    sed -n 's/^ *"term": *"\{0,1\}\([0-9]*\)"\{0,1\},\{0,1\}$/\1/p'
}
formed=""
for _ in $(seq 1 300); do
  out=$("$work/sqlraft" -a "$(addr 0 0)" nodes 2>/dev/null || true)
  reachable=$(echo "$out" | awk '$6 == "true"' | wc -l)
  leaders=$(echo "$out" | awk '$5 == "true"' | wc -l)
  if [ "$reachable" -eq 3 ] && [ "$leaders" -eq 1 ]; then formed=1; break; fi
  sleep 0.2
done
if [ -z "$formed" ]; then
  echo "the cluster did not form; logs:" >&2
  tail -n 20 "$work"/n*.log >&2
  exit 1
fi
# contact NODE prints how long ago the node, a follower, last heard from the
# leader, in milliseconds (empty on the leader, whose last contact is from
# before it led, and when the node does not answer).
contact() {
  "$work/sqlraft" -a "$(addr "$1" 0)" --timeout 5s status 2>/dev/null | awk '
    /^ *"state": *"Follower"/ { follower = 1 }
    /^ *"lastContact":/ { gsub(/[",s]/, "", $2); ms = int($2 * 1000) }
    END { if (follower && ms != "") print ms }'
}
start=$(term 0)
echo "formed at term $start; idle for ${seconds}s (flags: ${*:-defaults}; load average $(cut -d' ' -f1-3 /proc/loadavg))"
# Sample each node's last contact with the leader twice a second: the
# longest silence seen says how close the heartbeat timeout came to firing.
longest=0
deadline=$((SECONDS + seconds))
while [ "$SECONDS" -lt "$deadline" ]; do
  for i in 0 1 2; do
    c=$(contact "$i")
    [ -n "$c" ] && [ "$c" -gt "$longest" ] && longest=$c
  done
  sleep 0.5
done
end=""
for i in 0 1 2; do
  t=$(term "$i")
  echo "n$i: term ${t:-?}"
  [ -n "$t" ] && { [ -z "$end" ] || [ "$t" -gt "$end" ]; } && end=$t
done
echo "term $start -> ${end:-?} after ${seconds}s: $(( ${end:-$start} - start )) extra term(s); longest silence from the leader seen by a follower: ${longest} ms; load average $(cut -d' ' -f1-3 /proc/loadavg)"
