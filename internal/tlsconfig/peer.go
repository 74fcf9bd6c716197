package tlsconfig

import (
	"context"
	"crypto/x509"
	"errors"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// NodePeer reports whether the call's connection is a node's: it
// negotiated ALPNNode, which every server configuration of this package
// accepts only with a client certificate verified against the node CA. name
// is that certificate's name (CertName).
func NodePeer(ctx context.Context) (name string, ok bool) {
	leaf, proto := peerLeaf(ctx)
	if leaf == nil || proto != ALPNNode {
		return "", false
	}
	return CertName(leaf), true
}

// NodePeerCertificate is the certificate of the node that made the call,
// or nil when NodePeer is false.
func NodePeerCertificate(ctx context.Context) *x509.Certificate {
	leaf, proto := peerLeaf(ctx)
	if proto != ALPNNode {
		return nil
	}
	return leaf
}

// ClientPeer reports whether a call on the client port came with a user
// client certificate: one that verified against the client CA (a
// connection that offers one that does not verify is refused during the
// handshake). cn is the certificate's common name.
func ClientPeer(ctx context.Context) (cn string, ok bool) {
	leaf, proto := peerLeaf(ctx)
	if leaf == nil || proto == ALPNNode {
		return "", false
	}
	return leaf.Subject.CommonName, true
}

// CheckClaims reports whether the certificate the server of a finished
// call presented (p, from grpc.Peer) covers the host of every address in
// claims; "" entries are skipped. A discovery probe's answer is checked so
// (ProbeDialOptions).
func CheckClaims(p *peer.Peer, claims ...string) error {
	leaf, _ := leafOf(p)
	if leaf == nil {
		return errors.New("tlsconfig: the peer presented no certificate")
	}
	for _, a := range claims {
		if a == "" {
			continue
		}
		if err := CheckAddress(leaf, a); err != nil {
			return err
		}
	}
	return nil
}

func peerLeaf(ctx context.Context) (*x509.Certificate, string) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, ""
	}
	return leafOf(p)
}

func leafOf(p *peer.Peer) (*x509.Certificate, string) {
	if p == nil {
		return nil, ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, ""
	}
	return ti.State.PeerCertificates[0], ti.State.NegotiatedProtocol
}
