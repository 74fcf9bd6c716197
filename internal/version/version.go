// Package version holds the build's version string.
package version

// Version is set at build time with -ldflags "-X github.com/sqlraft/sqlraft/internal/version.Version=...".
var Version = "dev"
