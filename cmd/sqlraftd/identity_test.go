package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlraft/sqlraft/internal/testnet"
	"github.com/sqlraft/sqlraft/raftnode"
)

// singleNode is the configuration of a one-node cluster on dataDir with
// fresh loopback ports. given says whether id came from --node-id (rather
// than being its default, the hostname).
func singleNode(t *testing.T, dataDir, id string, given bool) config {
	t.Helper()
	return config{
		grpcAddr: testnet.FreeAddr(t), raftAddr: testnet.FreeAddr(t), nodeID: id, nodeIDGiven: given, dataDir: dataDir,
		snapshotThreshold: 8192, snapshotInterval: 30 * time.Second, trailingLogs: 10240,
		leaseIdleTimeout: 30 * time.Second, readConsistency: "linearizable", maxMessageBytes: 16 << 20,
		shutdownTimeout: 5 * time.Second, logLevel: "error",
		raftHeartbeatTimeout: raftnode.DefaultHeartbeatTimeout, raftElectionTimeout: raftnode.DefaultElectionTimeout,
		raftLeaderLeaseTimeout: raftnode.DefaultLeaderLeaseTimeout,
	}
}

// servedID starts cfg, waits for it to lead its one-node cluster, stops it
// and returns the ID it served as.
func servedID(t *testing.T, cfg config) string {
	t.Helper()
	stop := startNodes(t, []config{cfg})
	defer stop()
	return waitMembers(t, cfg.grpcAddr, 1)
}

func storedID(t *testing.T, dataDir string) string {
	t.Helper()
	s, err := raftnode.ReadStoredID(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// TestDataDirKeepsItsNodeID: the first start records the ID; a start with
// another explicit --node-id fails at once naming both; a start without
// --node-id (whatever the hostname now is) resumes the recorded ID.
func TestDataDirKeepsItsNodeID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if got := servedID(t, singleNode(t, dir, "alpha", true)); got != "alpha" {
		t.Fatalf("first start served as %q", got)
	}
	if got := storedID(t, dir); got != "alpha" {
		t.Fatalf("recorded %q", got)
	}

	errc := make(chan error, 1)
	var out bytes.Buffer
	go func() { // through the flags, as a person would type it
		cmd := rootCommand()
		cmd.SetArgs([]string{"--node-id", "beta", "--data-dir", dir, "--grpc-addr", testnet.FreeAddr(t), "--raft-addr", testnet.FreeAddr(t)})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		errc <- cmd.ExecuteContext(context.Background())
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), `"alpha"`) || !strings.Contains(err.Error(), `"beta"`) {
			t.Fatalf("start with another --node-id: %v", err)
		}
		t.Logf("refused: %s", out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("start with another --node-id did not fail; it is running")
	}
	if got := storedID(t, dir); got != "alpha" {
		t.Fatalf("after the refused start the directory records %q", got)
	}

	// Recreated container: no --node-id, and the default (the hostname) changed.
	if got := servedID(t, singleNode(t, dir, "new-container-hostname", false)); got != "alpha" {
		t.Fatalf("start without --node-id served as %q", got)
	}
	if got := servedID(t, singleNode(t, dir, "alpha", true)); got != "alpha" {
		t.Fatalf("start with the same --node-id served as %q", got)
	}
}

// TestFreshDataDirRecordsDefaultID: with no --node-id a new directory
// records the default (the hostname).
func TestFreshDataDirRecordsDefaultID(t *testing.T) {
	dir := t.TempDir()
	if got := servedID(t, singleNode(t, dir, "host-7", false)); got != "host-7" {
		t.Fatalf("served as %q", got)
	}
	if got := storedID(t, dir); got != "host-7" {
		t.Fatalf("recorded %q", got)
	}
}

// TestOlderDataDirAdoptsID: a directory written before IDs were recorded
// (state, no ID file) takes the ID it is started with, and keeps it.
func TestOlderDataDirAdoptsID(t *testing.T) {
	dir := t.TempDir()
	servedID(t, singleNode(t, dir, "old", true))
	if err := os.Remove(filepath.Join(dir, raftnode.IDFileName)); err != nil {
		t.Fatal(err)
	}
	if s, err := raftnode.ReadStoredID(dir); err != nil || s.ID != "" || !s.HasState {
		t.Fatalf("older directory: %+v, %v", s, err)
	}
	if got := servedID(t, singleNode(t, dir, "old", false)); got != "old" {
		t.Fatalf("served as %q", got)
	}
	if got := storedID(t, dir); got != "old" {
		t.Fatalf("recorded %q", got)
	}
}
