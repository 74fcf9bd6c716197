package tlsconfig

import (
	"context"
	"crypto/x509"

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

func peerLeaf(ctx context.Context) (*x509.Certificate, string) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, ""
	}
	return ti.State.PeerCertificates[0], ti.State.NegotiatedProtocol
}
