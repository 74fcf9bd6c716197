package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// perNodeCopies copies the users file at path once per node.
func perNodeCopies(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(t.TempDir(), fmt.Sprintf("users-node%d.yaml", i))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// changeOnLeader rewrites the leader's copy of the users file with edit and
// waits until the leader uses it (the probe call succeeds once it does).
func changeOnLeader(t *testing.T, c *servertest.Cluster, files []string, edit func(string) string, loaded func(context.Context, *servertest.Node) error) *servertest.Node {
	leader := c.Leader()
	var path string
	for i, n := range c.Nodes {
		if n == leader {
			path = files[i]
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(edit(string(data))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	c.Eventually(30*time.Second, func() error { return loaded(ctx(t), leader) })
	return leader
}

func withAuth(ctx context.Context, authz string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", authz)
}

// TestForwardedIdentityIsAuthorizedByLeader: with node identities, a
// follower forwards the caller's name, and the leader applies its own
// users file to that name.
func TestForwardedIdentityIsAuthorizedByLeader(t *testing.T) {
	files := perNodeCopies(t, writeUsersFile(t, ""))
	c := authCluster(t, "", true, 10000, files...)
	adminExec(t, c.Leader(), st("CREATE TABLE t(v TEXT)"))
	f := c.Followers()[0]
	execAs := func(n *servertest.Node, user string) error {
		_, err := n.DB().Execute(withAuth(ctx(t), basic(user, "pw-"+user)),
			&sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO t VALUES('f')")}})
		return err
	}
	if err := execAs(f, "only-execute"); err != nil {
		t.Fatalf("forwarded write of only-execute: %v", err)
	}
	// A write Request from a query-only user is classified, and refused, by
	// the leader: the follower forwards LINEARIZABLE requests unclassified.
	_, err := f.DB().Request(withAuth(ctx(t), basic("only-query", "pw-only-query")),
		&sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO t VALUES('q')")}})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"only-query" lacks the execute`) {
		t.Fatalf("write Request by only-query: %v", err)
	}
	resp, err := f.DB().Request(withAuth(ctx(t), basic("only-query", "pw-only-query")),
		&sqlraftv1.RequestRequest{Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM t")}})
	if err != nil || resp.GetHeader().GetNodeId() != c.Leader().ID {
		t.Fatalf("read Request by only-query through a follower: %v (served by %s)", err, resp.GetHeader().GetNodeId())
	}
	// The leader alone now grants only-execute query instead of execute:
	// the follower still lets the write through, the leader refuses it by
	// name.
	changeOnLeader(t, c, files, func(s string) string {
		return strings.Replace(s, "permissions: [execute]", "permissions: [query]", 1)
	}, func(ctx context.Context, n *servertest.Node) error {
		_, err := n.DB().Query(withAuth(ctx, basic("only-execute", "pw-only-execute")),
			&sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")}})
		return err
	})
	if err := execAs(f, "only-execute"); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"only-execute"`) {
		t.Fatalf("after the leader's change: %v, want PERMISSION_DENIED from the leader naming the user", err)
	}
}

// TestForwardedUserOnlyFromNodes: a client that is not a node cannot claim
// an identity with sqlraft-forwarded-user, on any node, whatever else it
// sends.
func TestForwardedUserOnlyFromNodes(t *testing.T) {
	c := authCluster(t, writeUsersFile(t, ""), true, 10000)
	for _, n := range c.Nodes {
		for _, md := range []metadata.MD{
			metadata.Pairs(server.MetadataForwardedUser, "only-execute"),
			metadata.Pairs(server.MetadataForwardedUser, "only-execute", "authorization", basic("only-query", "pw-only-query")),
		} {
			_, err := n.DB().Execute(metadata.NewOutgoingContext(ctx(t), md),
				&sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("CREATE TABLE x(v)")}})
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), server.MetadataForwardedUser) {
				t.Fatalf("%s, %v: got %v, want PERMISSION_DENIED", n.ID, md, err)
			}
		}
	}
	// A node on its own may Join, Status and Nodes, nothing else.
	nodeCtx := metadata.AppendToOutgoingContext(ctx(t), testNodePeer, "node9")
	if _, err := c.Leader().Cluster().Status(nodeCtx, &sqlraftv1.StatusRequest{}); err != nil {
		t.Fatalf("node Status: %v", err)
	}
	if _, err := c.Leader().DB().Query(nodeCtx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT 1")}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("node Query on its own: %v, want PERMISSION_DENIED", err)
	}
}

// TestForwardedCredentialsWithoutNodeIdentity: without node identities the
// follower forwards the caller's authorization header and the leader
// authenticates it again.
func TestForwardedCredentialsWithoutNodeIdentity(t *testing.T) {
	// Nodes joining and probing each other have no credentials here.
	files := perNodeCopies(t, writeUsersFile(t, "- name: '*'\n  permissions: [join, status]\n"))
	c := authCluster(t, "", false, 10000, files...)
	adminExec(t, c.Followers()[0], st("CREATE TABLE t(v TEXT)")) // forwarded with the token
	f := c.Followers()[0]
	insert := &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO t VALUES('f')")}}
	if _, err := f.DB().Execute(withAuth(ctx(t), basic("only-execute", "pw-only-execute")), insert); err != nil {
		t.Fatalf("forwarded write: %v", err)
	}
	if _, err := f.DB().Execute(ctx(t), insert); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous write: %v", err)
	}
	// Nodes lists every member reachable: the probes carry the caller's
	// credentials.
	nodes, err := f.Cluster().Nodes(withAuth(ctx(t), basic("only-status", "pw-only-status")), &sqlraftv1.NodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.GetNodes() {
		if !n.GetReachable() {
			t.Errorf("%s unreachable", n.GetId())
		}
	}
	// The leader changes only-execute's password: the follower still
	// accepts the old one and forwards it, the leader refuses it.
	changeOnLeader(t, c, files, func(s string) string {
		return replaceHash(t, s, "only-execute", bcryptHash(t, "new-pw"))
	}, func(ctx context.Context, n *servertest.Node) error {
		_, err := n.Cluster().Status(withAuth(ctx, basic("only-execute", "new-pw")), &sqlraftv1.StatusRequest{})
		if status.Code(err) != codes.PermissionDenied { // authenticated, and lacking status
			return fmt.Errorf("the leader does not know the new password yet: %v", err)
		}
		return nil
	})
	if _, err := f.DB().Execute(withAuth(ctx(t), basic("only-execute", "pw-only-execute")), insert); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("old password through the follower: %v, want UNAUTHENTICATED from the leader", err)
	}
	if _, err := f.DB().Execute(withAuth(ctx(t), basic("only-execute", "new-pw")), insert); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("new password at the follower that does not know it: %v", err)
	}
}

// replaceHash swaps user's password_hash line in a users file.
func replaceHash(t *testing.T, file, user, hash string) string {
	head := "- name: " + user + "\n  password_hash: '"
	i := strings.Index(file, head)
	if i < 0 {
		t.Fatalf("no user %s", user)
	}
	rest := file[i+len(head):]
	end := strings.Index(rest, "'")
	return file[:i+len(head)] + hash + rest[end:]
}
