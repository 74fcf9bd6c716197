package server_test

import (
	"context"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	pb "github.com/Jille/raft-grpc-transport/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/testlog"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// raftCalls calls each RPC of the Raft port once on cc, as node addr
// claims to be, and returns each one's error by name.
func raftCalls(ctx context.Context, cc *grpc.ClientConn, addr string) map[string]error {
	h := &pb.RPCHeader{ProtocolVersion: 3, Id: []byte("intruder"), Addr: []byte(addr)}
	rt := pb.NewRaftTransportClient(cc)
	out := map[string]error{}
	_, out["AppendEntries"] = rt.AppendEntries(ctx, &pb.AppendEntriesRequest{RpcHeader: h, Term: 1})
	_, out["RequestVote"] = rt.RequestVote(ctx, &pb.RequestVoteRequest{RpcHeader: h, Term: 1})
	_, out["RequestPreVote"] = rt.RequestPreVote(ctx, &pb.RequestPreVoteRequest{RpcHeader: h, Term: 1})
	_, out["TimeoutNow"] = rt.TimeoutNow(ctx, &pb.TimeoutNowRequest{RpcHeader: h})
	out["AppendEntriesPipeline"] = func() error {
		s, err := rt.AppendEntriesPipeline(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.AppendEntriesRequest{RpcHeader: h, Term: 1}); err != nil {
			_, err = s.Recv()
			return err
		}
		_, err = s.Recv()
		return err
	}()
	out["InstallSnapshot"] = func() error {
		s, err := rt.InstallSnapshot(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.InstallSnapshotRequest{RpcHeader: h, Term: 1}); err != nil {
			_, err = s.CloseAndRecv()
			return err
		}
		_, err = s.CloseAndRecv()
		return err
	}()
	out["Pull"] = func() error {
		s, err := sqlraftv1.NewSnapshotPullServiceClient(cc).Pull(ctx, &sqlraftv1.PullRequest{Token: "bogus", SnapshotId: "bogus"})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}()
	_, out["Grant"] = sqlraftv1.NewReadLeaseServiceClient(cc).Grant(ctx, &sqlraftv1.GrantRequest{LeaderId: "intruder", Term: 1})
	return out
}

// A peer with a certificate from a foreign CA, or none, cannot reach any
// RPC of the Raft port (the handshake fails: UNAVAILABLE to the caller); a
// node certificate whose names do not cover the address a transport message
// claims is refused with PERMISSION_DENIED. A foreign node cannot join, a
// node cannot join under an address its certificate does not cover, a
// plaintext client fails at once, and garbage on the TLS ports leaves the
// node serving. Every refusal is logged with its reason.
func TestTLSRefusals(t *testing.T) {
	logs := &testlog.Buffer{}
	c := servertest.New(t, 1, servertest.Options{TLS: &servertest.TLSOptions{Logger: logger(logs)}})
	n := c.Leader()
	ca, foreign := c.CA(), testpki.NewCA(t, "foreign CA")
	foreignCert := foreign.Node("node9", "127.0.0.1")
	elsewhere := ca.Node("elsewhere.example") // a node of the cluster's CA, not at 127.0.0.1
	transport := []string{"AppendEntries", "RequestVote", "RequestPreVote", "TimeoutNow", "AppendEntriesPipeline", "InstallSnapshot"}
	rows := []struct {
		name string
		cert *testpki.Issued
		want map[string]codes.Code // by RPC; missing: every RPC
		all  codes.Code
		log  string
	}{
		{"foreign CA", foreignCert, nil, codes.Unavailable, "unknown authority"},
		{"no certificate", nil, nil, codes.Unavailable, "no certificate"},
		// A node of the cluster's CA whose name does not match: the
		// transport refuses its messages; the snapshot and lease services
		// claim no address (a bogus pull token is simply not found; a
		// lease question from a non-leader is answered "not following").
		{"name mismatch", elsewhere, map[string]codes.Code{"Pull": codes.NotFound, "Grant": codes.OK}, codes.PermissionDenied, "name mismatch"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cc := dialTLS(t, n.RaftAddr, nodeClientTLS(ca, row.cert))
			cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got := raftCalls(cctx, cc, n.RaftAddr)
			for _, rpc := range append(transport, "Pull", "Grant") {
				want, ok := row.want[rpc]
				if !ok {
					want = row.all
				}
				if status.Code(got[rpc]) != want {
					t.Errorf("%s: %v, want %v", rpc, got[rpc], want)
				}
			}
			if !strings.Contains(logs.String(), "reason=\""+row.log+"\"") && !strings.Contains(logs.String(), "reason="+row.log+" ") {
				t.Errorf("no refusal logged with reason %q:\n%s", row.log, logs.String())
			}
		})
	}

	t.Run("join", func(t *testing.T) {
		req := &sqlraftv1.JoinRequest{Id: "node9", RaftAddress: "127.0.0.1:1", GrpcAddress: "127.0.0.1:2", NonVoter: true}
		_, err := sqlraftv1.NewClusterServiceClient(dialTLS(t, n.GRPCAddr, nodeClientTLS(ca, foreignCert))).Join(ctx(t), req)
		// The joiner sees the handshake fail (its words depend on when the
		// server's alert arrives); the node logs why.
		if status.Code(err) != codes.Unavailable {
			t.Errorf("join with a foreign node certificate: %v, want UNAVAILABLE from the handshake", err)
		}
		if !strings.Contains(logs.String(), `msg="refused a TLS peer" port=client peer=127.0.0.1 reason="unknown authority" certificate=node9`) {
			t.Errorf("the foreign node's refusal on the client port was not logged:\n%s", logs.String())
		}
		_, err = sqlraftv1.NewClusterServiceClient(dialTLS(t, n.GRPCAddr, nodeClientTLS(ca, elsewhere))).Join(ctx(t), req)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "does not cover host \"127.0.0.1\"") {
			t.Errorf("join under an address the certificate does not cover: %v, want PERMISSION_DENIED", err)
		}
		_, err = n.Cluster().Join(ctx(t), req) // a user: TLS, but no node certificate
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "requires a node certificate") {
			t.Errorf("join without a node certificate: %v, want PERMISSION_DENIED", err)
		}
		if members, _ := n.Raft.Members(); len(members) != 1 {
			t.Errorf("the cluster has %d members after refused joins", len(members))
		}
	})

	t.Run("plaintext client", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := sqlraftv1.NewClusterServiceClient(dialTLS(t, n.GRPCAddr, nil)).Status(cctx, &sqlraftv1.StatusRequest{})
		if status.Code(err) != codes.Unavailable || time.Since(start) > 10*time.Second {
			t.Errorf("plaintext against the TLS port: %v after %v, want UNAVAILABLE at once", err, time.Since(start))
		}
	})

	t.Run("garbage", func(t *testing.T) {
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		for _, addr := range []string{n.GRPCAddr, n.RaftAddr} {
			for i := 0; i < 10; i++ {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.Write(junk[:1<<(i+5)])
				conn.Close()
			}
		}
		if _, err := n.Cluster().Status(ctx(t), &sqlraftv1.StatusRequest{}); err != nil {
			t.Fatalf("after garbage: %v", err)
		}
		exec(t, n, st("CREATE TABLE IF NOT EXISTS g(v)"))
	})
}
