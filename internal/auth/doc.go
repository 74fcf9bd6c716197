// Package auth is sqlraft's users file: who may call the client API and
// what each caller may do.
//
// A Store reads a YAML file of users (name, argon2id or bcrypt
// password_hash, permissions) and API tokens (name, token_hash,
// permissions); a user named "*" grants its permissions to callers without
// credentials. The file is parsed strictly: an unknown field, an unknown
// permission, a malformed hash or a duplicate name is an error naming the
// entry. The Store looks at the file at most once a second and reads it
// again when it changed; a new file that does not parse is logged and the
// previous one kept.
//
// Secrets are verified with golang.org/x/crypto (never compared as
// plaintext); verified secrets are cached for a few minutes, so a client's
// repeated calls cost a map lookup; an unknown name costs what a wrong
// password costs and fails the same way (ErrInvalidCredentials); failures
// are throttled per peer address (ThrottledError). HashPassword and
// NewToken make what the file holds. DESIGN.md says why it is built so.
//
// The package is a leaf: the server maps its results to gRPC codes.
package auth
