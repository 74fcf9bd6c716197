#!/usr/bin/env bash
# The robustness suite (test/robustness): for each fault, a fresh 3-node
# cluster of sqlraftd processes on loopback, every link through an in-test
# proxy, a linearizable-register workload (checked with porcupine) and an
# append-only-set workload running while the fault is injected and healed.
#
#   scripts/robustness.sh          the full matrix (each scenario <= 60 s)
#   scripts/robustness.sh --short  the CI subset: every fault, shorter holds
#
# Both runs end with the canary: NONE reads under a partition, which porcupine
# must reject (else the checker could not be trusted).
#
# Environment: ROBUSTNESS_SEED (default 1) fixes the workloads' and faults'
# choices; ROBUSTNESS_FAULTS=a,b runs only those faults; ROBUSTNESS_OUT is
# where the matrix (matrix.md), failed histories (porcupine HTML) and the
# node logs of failed scenarios go (default $TMPDIR/sqlraft-robustness).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
short=()
[ "${1:-}" = "--short" ] && short=(-short)
export ROBUSTNESS_OUT="${ROBUSTNESS_OUT:-${TMPDIR:-/tmp}/sqlraft-robustness}"
mkdir -p "$ROBUSTNESS_OUT"
go vet -tags robustness,sqlite_preupdate_hook ./test/robustness/
rc=0
go test -tags robustness,sqlite_preupdate_hook "${short[@]}" -count=1 -v -timeout 30m \
	./test/robustness/ >"$ROBUSTNESS_OUT/run.log" 2>&1 || rc=$?
grep -v '^time=' "$ROBUSTNESS_OUT/run.log" | grep -E '^(=== RUN|--- |\s+robustness_test|\s+\||PASS|FAIL|ok)' || true
echo "robustness: full log and results in $ROBUSTNESS_OUT"
exit "$rc"
