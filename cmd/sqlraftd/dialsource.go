//go:build !robustness

package main

import "github.com/sqlraft/sqlraft/server/embed"

// withDialSource is a no-op outside robustness builds (see
// dialsource_robustness.go).
func withDialSource(*embed.Config) error { return nil }
