package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/internal/testpki"
	"github.com/sqlraft/sqlraft/server/servertest"
)

// presented is the certificate addr presents to a handshake with cfg.
func presented(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.DialWithDialer(&netDialer, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitPresented waits until every node's address (by addrOf) presents a
// certificate accepted by want.
func waitPresented(c *servertest.Cluster, cfg *tls.Config, addrOf func(*servertest.Node) string, want func(n *servertest.Node, got *x509.Certificate) bool) {
	for _, n := range c.Nodes {
		c.Eventually(30*time.Second, func() error {
			got, err := presented(addrOf(n), cfg)
			if err != nil {
				return err
			}
			if !want(n, got) {
				return fmt.Errorf("%s still presents serial %v", n.ID, got.SerialNumber)
			}
			return nil
		})
	}
}

// Certificates and keys are rotated in place on every node while clients
// keep writing, over connections made before and during the rotation: the
// client port's certificate, the node certificates, and then a new node CA
// (first a bundle of the old and the new CA, then node certificates from
// the new one, and a new node that has only those joins). No request
// fails, and new handshakes present the new certificates.
func TestTLSRotationUnderLoad(t *testing.T) {
	c := servertest.New(t, 3, servertest.Options{TLS: &servertest.TLSOptions{}})
	leader := c.Leader()
	exec(t, leader, st("CREATE TABLE r(v)"))
	oldCA := c.CA()

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	write := func(db sqlraftv1.DatabaseServiceClient) {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := db.Execute(cctx, &sqlraftv1.ExecuteRequest{Statements: []*sqlraftv1.Statement{st("INSERT INTO r VALUES(1)")}})
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		ok.Add(1)
	}
	wg.Add(2)
	go func() { // one long-lived connection
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				write(leader.DB())
			}
		}
	}()
	go func() { // a new connection (a new handshake) every few writes, through a follower
		defer wg.Done()
		f := c.Followers()[0]
		for {
			cc := dialTLS(t, f.GRPCAddr, c.ClientTLS())
			for i := 0; i < 10; i++ {
				select {
				case <-stop:
					cc.Close()
					return
				default:
					write(sqlraftv1.NewDatabaseServiceClient(cc))
				}
			}
			cc.Close()
		}
	}()

	// 1. The client port's certificate, new key.
	serials := map[string]string{}
	for _, n := range c.Nodes {
		is := oldCA.Server("localhost", "127.0.0.1")
		is.Write(n.TLS.Cert, n.TLS.Key)
		serials[n.ID] = is.Cert.SerialNumber.String()
	}
	waitPresented(c, c.ClientTLS(), func(n *servertest.Node) string { return n.GRPCAddr },
		func(n *servertest.Node, got *x509.Certificate) bool {
			return got.SerialNumber.String() == serials[n.ID]
		})

	// 2. The node certificates, new keys.
	probe := oldCA.Node("probe", "127.0.0.1")
	for _, n := range c.Nodes {
		is := oldCA.Node(n.ID, "127.0.0.1")
		is.Write(n.TLS.NodeCert, n.TLS.NodeKey)
		serials[n.ID] = is.Cert.SerialNumber.String()
	}
	waitPresented(c, nodeClientTLS(oldCA, probe), func(n *servertest.Node) string { return n.RaftAddr },
		func(n *servertest.Node, got *x509.Certificate) bool {
			return got.SerialNumber.String() == serials[n.ID]
		})

	// 3. A new CA: first trusted beside the old one, then used.
	newCA := testpki.NewCA(t, "sqlraft test node CA 2")
	bundle := testpki.Bundle(oldCA, newCA)
	for _, n := range c.Nodes {
		testpki.WriteFile(t, n.TLS.NodeCA, bundle)
	}
	newProbe := newCA.Node("probe", "127.0.0.1")
	for _, n := range c.Nodes {
		c.Eventually(30*time.Second, func() error { // the node accepts a node certificate of the new CA
			_, err := sqlraftv1.NewReadLeaseServiceClient(dialTLS(t, n.RaftAddr, nodeClientTLS(oldCA, newProbe))).
				Grant(ctx(t), &sqlraftv1.GrantRequest{LeaderId: "probe", Term: 1})
			if status.Code(err) != codes.OK {
				return fmt.Errorf("%s: %v", n.ID, err)
			}
			return nil
		})
	}
	for _, n := range c.Nodes {
		newCA.Node(n.ID, "127.0.0.1").Write(n.TLS.NodeCert, n.TLS.NodeKey)
	}
	both := nodeClientTLS(newCA, newProbe)
	both.RootCAs.AddCert(oldCA.Cert)
	waitPresented(c, both, func(n *servertest.Node) string { return n.RaftAddr },
		func(_ *servertest.Node, got *x509.Certificate) bool {
			return got.Issuer.CommonName == newCA.Cert.Subject.CommonName
		})
	// A new node with only new-CA certificates (and the bundle) joins and
	// catches up: its Raft and client-port handshakes with the others go
	// both ways under the new CA.
	newcomer := startTLSNode(t, c, "node3", leader.GRPCAddr, func(f servertest.TLSFiles) {
		newCA.Node("node3", "127.0.0.1").Write(f.NodeCert, f.NodeKey)
		testpki.WriteFile(t, f.NodeCA, bundle)
	})
	c.Eventually(servertest.LeaderTimeout, func() error {
		if a, b := newcomer.Raft().Applied(), leader.Raft.Applied(); a < b || a == 0 {
			return fmt.Errorf("the new node applied %d of %d", a, b)
		}
		return nil
	})
	c.Eventually(30*time.Second, func() error { // a few more writes after the last rotation
		if ok.Load() < 50 {
			return fmt.Errorf("%d writes so far", ok.Load())
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d writes failed during rotation; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	t.Logf("%d writes, none failed", ok.Load())
}

var netDialer = net.Dialer{Timeout: 5 * time.Second}
