#!/usr/bin/env bash
# Runs the tests of the packages that touch files (snapshot, internal/sqlitedb,
# internal/raftlog, internal/auth, internal/tlsconfig) with Windows file
# semantics: builds each test binary for windows/amd64 with mingw (cgo, for
# go-sqlite3) and runs it under wine, where
# renaming or removing an open file fails with errno 32
# (ERROR_SHARING_VIOLATION) and syncing a directory is refused, as on Windows.
# Then builds sqlraftd.exe and runs test/wine (build tag wine) on the host: it
# drives three sqlraftd.exe processes under wine through the seed scenario.
#
#   scripts/test-windows.sh [go test flags for the test binary, e.g. -test.run Lease]
#
# Installs what it needs with apt-get (once), builds the wine stub for
# bcryptprimitives.dll (scripts/wine/), and exits non-zero if a test fails.
set -euo pipefail
# go-sqlite3 must be built with its pre-update hook: the write budget counts
# rows and bytes with it (internal/sqlitedb/budget.go).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=sqlite_preupdate_hook"

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${SQLRAFT_WINE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/sqlraft-wine}"
export WINEPREFIX="${WINEPREFIX:-$work/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEARCH=win64
start=$(date +%s)

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine)
command -v wine64 >/dev/null || [ -x /usr/lib/wine/wine64 ] || need+=(wine64)
if [ ${#need[@]} -gt 0 ]; then
	echo "test-windows: installing ${need[*]}" >&2
	sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
winebin=wine
command -v wine64 >/dev/null && winebin=wine64

mkdir -p "$work"
# Stub for the DLL wine 8.0 lacks (see scripts/wine/bcryptprimitives.c).
dll="$work/bcryptprimitives.dll"
src="$root/scripts/wine/bcryptprimitives.c"
if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ]; then
	x86_64-w64-mingw32-gcc -shared -O2 -o "$dll" "$src" "$root/scripts/wine/bcryptprimitives.def" -ladvapi32
fi
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
	echo "test-windows: creating wine prefix $WINEPREFIX" >&2
	"$winebin" wineboot --init >/dev/null 2>&1 || true
	if command -v wineserver >/dev/null; then wineserver -w || true; fi
fi
cp "$dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# The packages that touch files: the snapshot store (leases, renames), the
# SQLite layer (database swaps, the write budget's cgo shim), the Raft log
# store (directory syncs, segment files), and the users file and TLS files
# re-read when they change (replaced by rename, or by a symlink swap where
# symbolic links exist).
pkgs=(./snapshot/ ./internal/sqlitedb/ ./internal/raftlog/ ./internal/auth/ ./internal/tlsconfig/)
status=0
: >"$work/last-run.log"
for pkg in "${pkgs[@]}"; do
	name=$(basename "$pkg")
	bin="$work/$name.test.exe"
	echo "test-windows: cross-compiling $pkg" >&2
	(cd "$root" && CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc \
		go test -c -o "$bin" "$pkg")
	# Tests create their directories under the wine prefix's temp dir and
	# clean up without os.RemoveAll (which fails under wine). They run in
	# their package's directory, as go test runs them, to find testdata/.
	echo "test-windows: running $pkg under $winebin" >&2
	log="$work/$name.log"
	set +e
	(cd "$root/$pkg" && "$winebin" "$bin" -test.v -test.timeout 10m "$@" 2>&1) | tee "$log" |
		grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|PASS|FAIL|ok|panic)' | grep -v '^=== RUN'
	rc=${PIPESTATUS[0]}
	set -e
	cat "$log" >>"$work/last-run.log"
	if [ "$rc" -ne 0 ] || ! grep -qx PASS "$log"; then
		echo "test-windows: $pkg FAILED" >&2
		status=1
	fi
done
# The daemon under wine: three sqlraftd.exe processes, driven from the host.
echo "test-windows: cross-compiling ./cmd/sqlraftd" >&2
(cd "$root" && CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc \
	go build -o "$work/sqlraftd.exe" ./cmd/sqlraftd)
echo "test-windows: running ./test/wine/ (sqlraftd.exe under $winebin)" >&2
log="$work/wine-daemon.log"
set +e
(cd "$root" && SQLRAFTD_EXE="$work/sqlraftd.exe" SQLRAFT_WINE="$winebin" \
	go test -tags wine,sqlite_preupdate_hook -count=1 -v -timeout 10m ./test/wine/ 2>&1) | tee "$log" |
	grep -E '^(--- (PASS|FAIL|SKIP)|PASS|FAIL|ok|panic)|_test\.go:'
rc=${PIPESTATUS[0]}
set -e
cat "$log" >>"$work/last-run.log"
if [ "$rc" -ne 0 ]; then
	echo "test-windows: ./test/wine/ FAILED" >&2
	status=1
fi
echo "test-windows: exit $status after $(( $(date +%s) - start ))s (full log: $work/last-run.log)" >&2
exit "$status"
