package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the argon2id cost parameters of a hash.
type Argon2Params struct {
	MemoryKiB uint32 // m
	Time      uint32 // t, passes over the memory
	Threads   uint8  // p, lanes (and goroutines while hashing)
}

// DefaultArgon2 is what HashPassword and NewToken use: 19 MiB, 2 passes, 1
// lane, OWASP's recommended argon2id setting, sized to the node's memory
// budget. See DESIGN.md.
var DefaultArgon2 = Argon2Params{MemoryKiB: 19 << 10, Time: 2, Threads: 1}

// Bounds on the parameters a users file may ask for: a hash is verified
// with the memory it names, so a file must not be able to make one
// verification take gigabytes or minutes.
const (
	maxArgon2MemoryKiB = 256 << 10
	maxArgon2Time      = 16
	maxArgon2Threads   = 16
	argon2KeyLen       = 32
	argon2SaltLen      = 16
)

func (p Argon2Params) check() error {
	if p.Time < 1 || p.Time > maxArgon2Time || p.Threads < 1 || p.Threads > maxArgon2Threads ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB {
		return fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d out of range (1<=t<=%d, 1<=p<=%d, 8p<=m<=%d KiB)",
			p.MemoryKiB, p.Time, p.Threads, maxArgon2Time, maxArgon2Threads, maxArgon2MemoryKiB)
	}
	return nil
}

// hash is a parsed password or token hash.
type hash interface {
	// verify reports whether secret matches. It costs the hash's full
	// price whatever the secret.
	verify(secret []byte) bool
}

type argon2Hash struct {
	params    Argon2Params
	salt, key []byte
}

func (h *argon2Hash) verify(secret []byte) bool {
	k := argon2.IDKey(secret, h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

// bcryptHash is a bcrypt hash string; bcrypt compares in constant time.
type bcryptHash []byte

func (h bcryptHash) verify(secret []byte) bool {
	return bcrypt.CompareHashAndPassword(h, secret) == nil
}

// phcB64 is the PHC string format's base64: standard alphabet, no padding.
var phcB64 = base64.RawStdEncoding

// parseHash parses an argon2id PHC string or a bcrypt hash.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil || len(s) != 60 {
			return nil, fmt.Errorf("malformed bcrypt hash (want 60 characters, $2b$NN$ and 53 more)")
		}
		return bcryptHash(s), nil
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("only argon2id is accepted of the argon2 variants")
	case s == "":
		return nil, errors.New("empty hash")
	}
	return nil, errors.New("not an argon2id ($argon2id$...) or bcrypt ($2a$, $2b$, $2y$) hash; " +
		"make one with sqlraftd hash-password (a plaintext secret is never accepted)")
}

// parseArgon2 parses $argon2id$v=19$m=M,t=T,p=P$SALT$KEY.
func parseArgon2(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[2] != "v=19" {
		return nil, errors.New("malformed argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$key")
	}
	var h argon2Hash
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed argon2id parameter %q", kv)
		}
		switch k {
		case "m":
			h.params.MemoryKiB = uint32(n)
		case "t":
			h.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("argon2id p=%d is out of range", n)
			}
			h.params.Threads = uint8(n)
		default:
			return nil, fmt.Errorf("unknown argon2id parameter %q", k)
		}
	}
	if err := h.params.check(); err != nil {
		return nil, err
	}
	var err error
	if h.salt, err = phcB64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("malformed argon2id salt: want at least 8 bytes in unpadded base64")
	}
	if h.key, err = phcB64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, errors.New("malformed argon2id key: want 16 to 64 bytes in unpadded base64")
	}
	return &h, nil
}

// HashPassword returns an argon2id PHC string for secret with
// DefaultArgon2 and a fresh random salt.
func HashPassword(secret []byte) (string, error) {
	return HashPasswordWith(secret, DefaultArgon2)
}

// HashPasswordWith is HashPassword with other parameters (tests use cheap
// ones); it refuses parameters a users file may not hold.
func HashPasswordWith(secret []byte, p Argon2Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey(secret, salt, p.Time, p.MemoryKiB, p.Threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.MemoryKiB, p.Time, p.Threads,
		phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// tokenSecretBytes is the entropy of a token's secret.
const tokenSecretBytes = 32

// NewToken returns a fresh API token for name, "NAME.SECRET" with a random
// 256-bit secret, and the hash of its secret for the users file's tokens.
func NewToken(name string) (token, secretHash string, err error) {
	if err := checkName(name, true); err != nil {
		return "", "", err
	}
	raw := make([]byte, tokenSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw) // no '.', safe in a header
	if secretHash, err = HashPassword([]byte(secret)); err != nil {
		return "", "", err
	}
	return name + "." + secret, secretHash, nil
}

// dummyLike returns a hash that costs what h costs to verify and that no
// secret matches, for the names nobody has (so that a miss takes as long as
// a wrong password).
func dummyLike(h hash) (hash, error) {
	switch h := h.(type) {
	case *argon2Hash:
		d := &argon2Hash{params: h.params, salt: make([]byte, len(h.salt)), key: make([]byte, len(h.key))}
		if _, err := rand.Read(d.salt); err != nil {
			return nil, err
		}
		_, err := rand.Read(d.key)
		return d, err
	case bcryptHash:
		cost, _ := bcrypt.Cost(h)
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		b, err := bcrypt.GenerateFromPassword(secret, cost)
		return bcryptHash(b), err
	}
	return nil, fmt.Errorf("unknown hash type %T", h)
}
