package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/auth"
	"github.com/sqlraft/sqlraft/server"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// testNodePeer is the metadata key the fake node identity travels in: the
// nodes' own dials add it (ForwardDialOptions), test clients do not. It
// stands in for node TLS, which decides the same question from the
// connection's certificate.
const testNodePeer = "test-node-peer"

func fakeNodePeer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(testNodePeer); len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// asNode makes every call on a node's own connections carry testNodePeer.
func asNode(id string) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
			invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, testNodePeer, id), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
			streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, testNodePeer, id), desc, cc, method, opts...)
		}),
	}
}

// cheapArgon2 keeps the tests' argon2id fast; the production cost is
// covered by internal/auth and cmd/sqlraftd.
var cheapArgon2 = auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

// testToken is the token "ci.SECRET" of the users file (all permissions).
const testToken = "ci.s3cret-token-value"

// permNames are the permissions, to make a user with exactly one of them and
// one with all but one.
var permNames = []string{"execute", "query", "stream", "backup", "load", "snapshot", "join", "remove", "status"}

// writeUsersFile writes a users file: for each permission P, "only-P"
// (password "pw-only-P") and "all-but-P" (password "pw-all-but-P"); token
// "ci" with everything; and extra lines.
func writeUsersFile(t testing.TB, extra string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, p := range permNames {
		var others []string
		for _, q := range permNames {
			if q != p {
				others = append(others, q)
			}
		}
		fmt.Fprintf(&b, "- name: only-%s\n  password_hash: '%s'\n  permissions: [%s]\n", p, bcryptHash(t, "pw-only-"+p), p)
		fmt.Fprintf(&b, "- name: all-but-%s\n  password_hash: '%s'\n  permissions: [%s]\n", p, bcryptHash(t, "pw-all-but-"+p),
			strings.Join(others, ", "))
	}
	b.WriteString(extra)
	th, err := auth.HashPasswordWith([]byte(strings.TrimPrefix(testToken, "ci.")), cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "tokens:\n- name: ci\n  token_hash: '%s'\n  permissions: [all]\n", th)
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func bcryptHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// authCluster starts a 3-node cluster whose nodes read usersFile. With
// nodeTLS the nodes know each other (Options.NodePeer, faked) and forward
// identities by name; without, they forward the caller's credentials.
// Each node reads its own copy of the file (files[i]), when given one, so a
// test can change what one node believes.
func authCluster(t *testing.T, usersFile string, nodeTLS bool, burst int, files ...string) *servertest.Cluster {
	return servertest.New(t, 3, servertest.Options{Server: func(i int, o *server.Options) {
		path := usersFile
		if i < len(files) {
			path = files[i]
		}
		users, err := auth.Open(path, auth.Options{Logger: servertest.Logger(), FailureBurst: burst})
		if err != nil {
			t.Fatal(err)
		}
		o.Users = users
		if nodeTLS {
			o.NodePeer = fakeNodePeer
			o.ForwardDialOptions = append(o.ForwardDialOptions, asNode(fmt.Sprintf("node%d", i))...)
		}
	}})
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// rpcCase calls one RPC the way a table row needs.
type rpcCase struct {
	method string
	perm   string     // the permission it needs
	ok     codes.Code // what an allowed call gets with this request
	before func(t *testing.T, c *servertest.Cluster, n *servertest.Node)
	call   func(ctx context.Context, n *servertest.Node) error
}

func drain[T any](recv func() (T, error)) error {
	for {
		if _, err := recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func rpcCases() []rpcCase {
	insert := []*sqlraftv1.Statement{st("INSERT INTO t(v) VALUES('x')")}
	return []rpcCase{
		{method: sqlraftv1.DatabaseService_Execute_FullMethodName, perm: "execute", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: insert})
			return err
		}},
		{method: sqlraftv1.DatabaseService_Query_FullMethodName, perm: "query", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.DB().Query(ctx, &sqlraftv1.QueryRequest{Statements: []*sqlraftv1.Statement{st("SELECT count(*) FROM t")}})
			return err
		}},
		{method: sqlraftv1.DatabaseService_Request_FullMethodName, perm: "execute", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.DB().Request(ctx, &sqlraftv1.RequestRequest{Statements: insert})
			return err
		}},
		{method: sqlraftv1.DatabaseService_QueryStream_FullMethodName, perm: "stream", call: func(ctx context.Context, n *servertest.Node) error {
			s, err := n.DB().QueryStream(ctx, &sqlraftv1.QueryStreamRequest{Statement: st("SELECT * FROM t")})
			if err != nil {
				return err
			}
			return drain(s.Recv)
		}},
		{method: sqlraftv1.DatabaseService_Backup_FullMethodName, perm: "backup", call: func(ctx context.Context, n *servertest.Node) error {
			s, err := n.DB().Backup(ctx, &sqlraftv1.BackupRequest{})
			if err != nil {
				return err
			}
			return drain(s.Recv)
		}},
		{method: sqlraftv1.ClusterService_Join_FullMethodName, perm: "join", ok: codes.InvalidArgument, call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().Join(ctx, &sqlraftv1.JoinRequest{}) // refused as incomplete once authorized
			return err
		}},
		{method: sqlraftv1.ClusterService_Remove_FullMethodName, perm: "remove", ok: codes.InvalidArgument, call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().Remove(ctx, &sqlraftv1.RemoveRequest{})
			return err
		}},
		{method: sqlraftv1.ClusterService_TransferLeadership_FullMethodName, perm: "remove", ok: codes.NotFound, call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().TransferLeadership(ctx, &sqlraftv1.TransferLeadershipRequest{Id: "no-such-node"})
			return err
		}},
		{method: sqlraftv1.ClusterService_Nodes_FullMethodName, perm: "status", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().Nodes(ctx, &sqlraftv1.NodesRequest{})
			return err
		}},
		{method: sqlraftv1.ClusterService_Status_FullMethodName, perm: "status", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().Status(ctx, &sqlraftv1.StatusRequest{})
			return err
		}},
		{method: sqlraftv1.ClusterService_Checksum_FullMethodName, perm: "status", call: func(ctx context.Context, n *servertest.Node) error {
			_, err := n.Cluster().Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			return err
		}},
		{method: sqlraftv1.ClusterService_Snapshot_FullMethodName, perm: "snapshot", before: somethingToSnapshot,
			call: func(ctx context.Context, n *servertest.Node) error {
				_, err := n.Cluster().Snapshot(ctx, &sqlraftv1.SnapshotRequest{})
				return err
			}},
	}
}

// somethingToSnapshot writes through the leader and waits until n applied
// it, so that n has something new to snapshot.
func somethingToSnapshot(t *testing.T, c *servertest.Cluster, n *servertest.Node) {
	resp := adminExec(t, c.Leader(), st("INSERT INTO t(v) VALUES('s')"))
	c.Eventually(30*time.Second, func() error {
		if got := n.Raft.Status().AppliedIndex; got < resp.GetHeader().GetRaftIndex() {
			return fmt.Errorf("%s applied %d, want %d", n.ID, got, resp.GetHeader().GetRaftIndex())
		}
		return nil
	})
}

// TestAuthEveryRPC is the table test of issue #12: every RPC of both
// services, called on the leader and on a follower (forwarded where the RPC
// forwards), with each kind of caller, must give exactly the expected code.
func TestAuthEveryRPC(t *testing.T) {
	cases := rpcCases()
	checkCoversServices(t, cases)
	c := authCluster(t, writeUsersFile(t, ""), true, 10000)
	adminExec(t, c.Leader(), st("CREATE TABLE t(v TEXT)"))
	targets := map[string]*servertest.Node{"leader": c.Leader(), "follower": c.Followers()[0]}
	for _, rc := range cases {
		name := rc.method[strings.LastIndex(rc.method, "/")+1:]
		for where, n := range targets {
			cells := []struct {
				who  string
				md   metadata.MD
				want codes.Code
			}{
				{"no credentials", nil, codes.Unauthenticated},
				{"wrong password", metadata.Pairs("authorization", basic("only-"+rc.perm, "nope")), codes.Unauthenticated},
				{"unknown user", metadata.Pairs("authorization", basic("mallory", "pw-only-"+rc.perm)), codes.Unauthenticated},
				{"lacks permission", metadata.Pairs("authorization", basic("all-but-"+rc.perm, "pw-all-but-"+rc.perm)), codes.PermissionDenied},
				{"has permission", metadata.Pairs("authorization", basic("only-"+rc.perm, "pw-only-"+rc.perm)), rc.ok},
				{"valid token", metadata.Pairs("authorization", "Bearer "+testToken), rc.ok},
				{"bad token", metadata.Pairs("authorization", "Bearer ci.wrong"), codes.Unauthenticated},
			}
			for _, cell := range cells {
				t.Run(fmt.Sprintf("%s/%s/%s", name, where, cell.who), func(t *testing.T) {
					if rc.before != nil && cell.want == rc.ok {
						rc.before(t, c, n)
					}
					cctx := metadata.NewOutgoingContext(retryCtx(t), cell.md)
					err := servertest.Retry(t, cctx, servertest.Idempotent, func(ctx context.Context) error { return rc.call(ctx, n) })
					if got := status.Code(err); got != cell.want {
						t.Fatalf("got %v (%v), want %v", got, err, cell.want)
					}
					if cell.want == codes.PermissionDenied {
						if msg := status.Convert(err).Message(); !strings.Contains(msg, rc.perm) || !strings.Contains(msg, "all-but-"+rc.perm) {
							t.Fatalf("%q does not name the permission and the user", msg)
						}
					}
					if cell.want == codes.Unauthenticated && cell.md != nil && status.Convert(err).Message() != "invalid credentials" {
						t.Fatalf("a failed authentication says %q, want just \"invalid credentials\"", status.Convert(err).Message())
					}
				})
			}
		}
	}
}

// asAdmin is ctx with the test token, which may do everything.
func asAdmin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
}

// adminExec runs stmts through n with the test token.
func adminExec(t *testing.T, n *servertest.Node, stmts ...*sqlraftv1.Statement) *sqlraftv1.ExecuteResponse {
	t.Helper()
	var resp *sqlraftv1.ExecuteResponse
	err := servertest.Retry(t, asAdmin(retryCtx(t)), servertest.NotIdempotent, func(ctx context.Context) (err error) {
		resp, err = n.DB().Execute(ctx, &sqlraftv1.ExecuteRequest{Statements: stmts})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// checkCoversServices fails when an RPC of either service has no row, or a
// row names no RPC: adding an RPC without deciding its permission fails.
func checkCoversServices(t *testing.T, cases []rpcCase) {
	t.Helper()
	var want, got []string
	for _, d := range []*grpc.ServiceDesc{&sqlraftv1.DatabaseService_ServiceDesc, &sqlraftv1.ClusterService_ServiceDesc} {
		for _, m := range d.Methods {
			want = append(want, "/"+d.ServiceName+"/"+m.MethodName)
		}
		for _, s := range d.Streams {
			want = append(want, "/"+d.ServiceName+"/"+s.StreamName)
		}
	}
	for _, rc := range cases {
		got = append(got, rc.method)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, " ") != strings.Join(got, " ") {
		t.Fatalf("the table covers\n%v\nbut the services have\n%v", got, want)
	}
}
