package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Anonymous is the user name whose permissions every caller has without
// credentials.
const Anonymous = "*"

// fileSchema is the users file as written.
type fileSchema struct {
	Users []struct {
		Name         string   `yaml:"name"`
		PasswordHash string   `yaml:"password_hash"`
		Permissions  []string `yaml:"permissions"`
	} `yaml:"users"`
	Tokens []struct {
		Name        string   `yaml:"name"`
		TokenHash   string   `yaml:"token_hash"`
		Permissions []string `yaml:"permissions"`
	} `yaml:"tokens"`
}

// principal is one user or token of a parsed file.
type principal struct {
	name   string
	perms  Permission
	secret hash // nil: no password (a user who signs in by certificate only, or "*")
	token  bool
}

// users is one parsed users file. Users and tokens share one namespace, so
// a name alone (a forwarded identity, a certificate's CN) says who it is.
type users struct {
	byName map[string]*principal
	order  []*principal // as in the file
	dummy  hash         // costs what the file's first secret costs; matches nothing
}

// parseUsers parses and checks a users file: unknown fields, unknown
// permissions, malformed hashes, bad names and duplicates are errors naming
// the entry.
func parseUsers(data []byte) (*users, error) {
	var f fileSchema
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	u := &users{byName: map[string]*principal{}}
	for i, e := range f.Users {
		p, err := newPrincipal(e.Name, e.PasswordHash, e.Permissions, false)
		if err != nil {
			return nil, fmt.Errorf("users[%d] (%q): %w", i, e.Name, err)
		}
		if err := u.add(p); err != nil {
			return nil, fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	for i, e := range f.Tokens {
		p, err := newPrincipal(e.Name, e.TokenHash, e.Permissions, true)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d] (%q): %w", i, e.Name, err)
		}
		if err := u.add(p); err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
	}
	return u, u.makeDummy()
}

func newPrincipal(name, secretHash string, perms []string, token bool) (*principal, error) {
	if err := checkName(name, token); err != nil {
		return nil, err
	}
	p := &principal{name: name, token: token}
	for _, s := range perms {
		q, err := ParsePermission(s)
		if err != nil {
			return nil, err
		}
		p.perms |= q
	}
	switch {
	case name == Anonymous && secretHash != "":
		return nil, errors.New("the anonymous user \"*\" takes no password_hash")
	case secretHash == "" && token:
		return nil, errors.New("token_hash is required (sqlraftd new-token makes one)")
	case secretHash != "":
		h, err := parseHash(secretHash)
		if err != nil {
			return nil, err
		}
		p.secret = h
	}
	return p, nil
}

// checkName checks a user or token name: a Basic credential splits at the
// first ':' and a token at the first '.', and names travel in metadata.
func checkName(name string, token bool) error {
	switch {
	case name == "":
		return errors.New("name is required")
	case name == Anonymous && !token:
		return nil
	case len(name) > 128:
		return errors.New("name is longer than 128 bytes")
	case strings.ContainsAny(name, ":*") || (token && strings.Contains(name, ".")):
		return errors.New("a name may not contain ':' or '*', and a token's not '.'")
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f {
			return errors.New("a name is printable ASCII without spaces")
		}
	}
	return nil
}

func (u *users) add(p *principal) error {
	if prev, ok := u.byName[p.name]; ok {
		kind := "user"
		if prev.token {
			kind = "token"
		}
		return fmt.Errorf("duplicate name %q (already a %s; users and tokens share names)", p.name, kind)
	}
	u.byName[p.name] = p
	u.order = append(u.order, p)
	return nil
}

// makeDummy picks the hash unknown names are verified against.
func (u *users) makeDummy() error {
	for _, p := range u.order {
		if p.secret != nil {
			d, err := dummyLike(p.secret)
			u.dummy = d
			return err
		}
	}
	d, err := dummyLike(&argon2Hash{params: DefaultArgon2, salt: make([]byte, argon2SaltLen), key: make([]byte, argon2KeyLen)})
	u.dummy = d
	return err
}
