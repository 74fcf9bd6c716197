// Package tlsconfig is a node's TLS: the client port's certificate and its
// user client certificate mode, node mutual TLS on the Raft port, and the
// credentials of every dial to another node. It reads the certificate, key
// and CA files it is given and re-reads them when they change (looked at,
// at most once per ReloadInterval, when a handshake needs them; a symbolic
// link swap, as Kubernetes secrets rotate, counts as a change; a bad new
// file is logged and the old one kept), so certificates rotate without a
// restart.
//
// Peers are verified in VerifyConnection against the CA pool as it is at
// that handshake, and every refusal is logged with its reason (unknown
// authority, expired, name mismatch, no certificate), at most once per
// peer, port and reason per RefusalLogInterval.
//
// Node dials offer the ALPN protocol ALPNNode besides h2; the client port
// answers such a hello with the node certificate and requires a client
// certificate from the node CA, so NodePeer can tell a node's call from a
// user's by the negotiated protocol alone. On the Raft port an interceptor
// refuses (PERMISSION_DENIED) a transport message whose header claims an
// address the peer's certificate does not cover (CheckAddress).
//
// The package imports no other sqlraft package. DESIGN.md says why it is
// built this way.
package tlsconfig
