//go:build !sqlite_preupdate_hook

package sqlitedb

// The write budget counts the rows and bytes each entry writes with SQLite's
// pre-update hook, which go-sqlite3 compiles in only with this build tag.
// Build and test with it: go build -tags sqlite_preupdate_hook (the
// project's scripts set GOFLAGS=-tags=sqlite_preupdate_hook).
var _ = this_package_needs_the_build_tag_sqlite_preupdate_hook
