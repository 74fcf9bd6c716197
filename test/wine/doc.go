// Package wine runs sqlraftd as separate Windows processes under wine, the
// same Windows file semantics the snapshot and SQLite tests use, through the
// scenario that stopped rqlite nodes on Windows: a node comes back after
// the leader truncated its log and is sent a snapshot while the leader keeps
// writing and snapshotting.
//
// Its tests carry the build tag wine and need SQLRAFTD_EXE (a sqlraftd.exe
// built for windows/amd64) and SQLRAFT_WINE (the wine binary);
// scripts/test-windows.sh builds the one, installs the other and runs them.
package wine
