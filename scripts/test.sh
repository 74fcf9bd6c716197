#!/usr/bin/env bash
# The project's test command (the README names it; .ci/run calls it).
# Packages that own goroutines and locks run under the race detector.
set -euo pipefail
# go-sqlite3 must be built with its pre-update hook: the write budget counts
# rows and bytes with it (internal/sqlitedb/budget.go).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
race_pkgs=(./raftnode/... ./server/... ./client/...)
[ -d snapshot ] && race_pkgs+=(./snapshot/...)
other_pkgs=$(go list ./... | grep -v -e '/raftnode' -e '/server' -e '/snapshot' -e '/client' || true)
echo "== go vet"
go vet ./...
echo "== go test -race ${race_pkgs[*]}"
go test -race -count=1 -timeout 20m "${race_pkgs[@]}"
echo "== go test (other packages)"
# shellcheck disable=SC2086
go test -count=1 -timeout 10m $other_pkgs
echo "== deploy module: manifests decoded strictly into Kubernetes types"
(cd deploy && go vet ./... && go test -count=1 ./...)
echo "== end-to-end on Docker containers (prints SKIP when no engine answers)"
go vet -tags e2e,sqlite_preupdate_hook ./test/e2e/...
e2e_log=$(mktemp)
rc=0
go test -tags e2e,sqlite_preupdate_hook -count=1 -timeout 20m -v ./test/e2e/ >"$e2e_log" 2>&1 || rc=$?
grep -v '^time=' "$e2e_log" || true
rm -f "$e2e_log"
exit "$rc"
