#!/usr/bin/env bash
# Starts a three-node cluster of real sqlraftd processes on 127.0.0.1
# (free ports, a temporary data directory), generates the Python code, runs
# example.py against the cluster and stops it. Exits non-zero if anything
# fails, printing the nodes' logs. Needs Go, a C compiler and Debian's
#   protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf
# PYTHON picks the interpreter (default /usr/bin/python3, which sees
# Debian's python3-* packages).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
work=$(mktemp -d)
pids=()
status=1
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/n*.log; do [ -f "$log" ] && { echo "--- $log (last 40 lines)"; tail -n 40 "$log"; }; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$here/generate.sh" "$work/gen"
(cd "$root" && go build -o "$work/sqlraftd" ./cmd/sqlraftd && go build -o "$work/sqlraft" ./cmd/sqlraft)

# Six free ports on 127.0.0.1 (asked of the kernel, then released for the
# nodes to listen on).
read -r -a ports <<<"$("$python" -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

addrs=()
for i in 0 1 2; do
  grpc=127.0.0.1:${ports[$((2 * i))]} raft=127.0.0.1:${ports[$((2 * i + 1))]}
  join=()
  [ "$i" -gt 0 ] && join=(--join "${addrs[0]}")
  "$work/sqlraftd" --node-id "n$((i + 1))" --data-dir "$work/n$((i + 1))" \
    --grpc-addr "$grpc" --raft-addr "$raft" "${join[@]}" 2>"$work/n$((i + 1)).log" &
  pids+=($!)
  addrs+=("$grpc")
done
for a in "${addrs[@]}"; do "$work/sqlraft" -a "$a" wait --timeout 60s >/dev/null; done
# wait says a node is SERVING; the example wants all three members listed.
for _ in $(seq 1 100); do
  [ "$("$work/sqlraft" -a "${addrs[0]}" nodes -o json | grep -o '"grpcAddress"' | wc -l)" -eq 3 ] && break
  sleep 0.2
done

SQLRAFT_PY_GEN="$work/gen" "$python" "$here/example.py" "${addrs[@]}"
status=0
