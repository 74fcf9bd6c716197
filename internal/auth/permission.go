package auth

import (
	"fmt"
	"strings"
)

// Permission is a set of rights: each constant is one right, and a
// Permission value may hold several (a user's whole grant).
type Permission uint16

// The rights a users file can grant. Names are what the file spells.
const (
	// Execute: DatabaseService.Execute, and Request with any write.
	Execute Permission = 1 << iota
	// Query: DatabaseService.Query, and Request when every statement reads.
	Query
	// Stream: DatabaseService.QueryStream.
	Stream
	// Backup: DatabaseService.Backup.
	Backup
	// Load: loading a database (issue #13; nothing uses it yet).
	Load
	// Snapshot: ClusterService.Snapshot.
	Snapshot
	// Join: ClusterService.Join.
	Join
	// Remove: ClusterService.Remove and TransferLeadership.
	Remove
	// Status: ClusterService.Nodes, Status and Checksum.
	Status

	// All is every right, present and future ("all" in the file).
	All Permission = 1<<iota - 1
)

var permissionNames = []struct {
	p    Permission
	name string
}{
	{Execute, "execute"}, {Query, "query"}, {Stream, "stream"}, {Backup, "backup"}, {Load, "load"},
	{Snapshot, "snapshot"}, {Join, "join"}, {Remove, "remove"}, {Status, "status"},
}

// ParsePermission returns the right named s ("all" is every right).
func ParsePermission(s string) (Permission, error) {
	if s == "all" {
		return All, nil
	}
	for _, n := range permissionNames {
		if n.name == s {
			return n.p, nil
		}
	}
	return 0, fmt.Errorf("unknown permission %q (known: %s, all)", s, strings.Join(permissionList(), ", "))
}

func permissionList() []string {
	out := make([]string, len(permissionNames))
	for i, n := range permissionNames {
		out[i] = n.name
	}
	return out
}

// Has reports whether p holds every right in q.
func (p Permission) Has(q Permission) bool { return p&q == q }

// String names the rights in p, comma-separated ("all" when it holds
// every one, "none" when empty).
func (p Permission) String() string {
	if p == All {
		return "all"
	}
	var names []string
	for _, n := range permissionNames {
		if p.Has(n.p) {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}
