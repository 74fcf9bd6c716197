package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sqlraft/sqlraft/internal/eventually"
	"github.com/sqlraft/sqlraft/internal/testdir"
	"github.com/sqlraft/sqlraft/internal/testlog"
)

// cheap is an argon2id cost that keeps tests fast; the format and the code
// path are the production ones.
var cheap = Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

func mustHash(t testing.TB, secret string) string {
	t.Helper()
	h, err := HashPasswordWith([]byte(secret), cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func bcryptOf(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // a new inode, as a rotated secret is
		t.Fatal(err)
	}
}

func openStore(t testing.TB, body string, opts Options) (*Store, string, *testlog.Buffer) {
	t.Helper()
	path := filepath.Join(testdir.New(t, "auth"), "users.yaml")
	writeFile(t, path, body)
	logs := &testlog.Buffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	if opts.ReloadCheck == 0 {
		opts.ReloadCheck = 10 * time.Millisecond
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, logs
}

func TestParsePermission(t *testing.T) {
	for _, name := range []string{"execute", "query", "stream", "backup", "load", "snapshot", "join", "remove", "status"} {
		p, err := ParsePermission(name)
		if err != nil || p.String() != name {
			t.Errorf("%s: got %v (%s), %v", name, p, p.String(), err)
		}
		if !All.Has(p) {
			t.Errorf("all lacks %s", name)
		}
	}
	if p, err := ParsePermission("all"); err != nil || p != All || p.String() != "all" {
		t.Errorf("all: %v %v", p, err)
	}
	if _, err := ParsePermission("Execute"); err == nil || !strings.Contains(err.Error(), "unknown permission") {
		t.Errorf("Execute: %v", err)
	}
	if got := (Query | Status).String(); got != "query,status" {
		t.Errorf("String = %q", got)
	}
}

func TestParseUsersErrors(t *testing.T) {
	h := mustHash(t, "x")
	for _, tc := range []struct{ name, body, want string }{
		{"unknown permission", "users:\n- name: a\n  password_hash: '" + h + "'\n  permissions: [write]\n", `users[0] ("a"): unknown permission "write"`},
		{"plaintext", "users:\n- name: a\n  password_hash: hunter2\n", "not an argon2id"},
		{"argon2i", "users:\n- name: a\n  password_hash: '$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5'\n", "only argon2id"},
		{"bad bcrypt", "users:\n- name: a\n  password_hash: '$2b$10$short'\n", "malformed bcrypt"},
		{"huge memory", "users:\n- name: a\n  password_hash: '$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5'\n", "out of range"},
		{"bad salt", "users:\n- name: a\n  password_hash: '$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5'\n", "malformed argon2id salt"},
		{"duplicate user", "users:\n- name: a\n  password_hash: '" + h + "'\n- name: a\n  password_hash: '" + h + "'\n", `duplicate name "a"`},
		{"token named as user", "users:\n- name: a\n  password_hash: '" + h + "'\ntokens:\n- name: a\n  token_hash: '" + h + "'\n", `tokens[0]: duplicate name "a" (already a user`},
		{"unknown field", "users:\n- name: a\n  password: x\n", "field password not found"},
		{"anonymous with hash", "users:\n- name: '*'\n  password_hash: '" + h + "'\n", "takes no password_hash"},
		{"token without hash", "tokens:\n- name: ci\n", "token_hash is required"},
		{"token name with dot", "tokens:\n- name: a.b\n  token_hash: '" + h + "'\n", "not '.'"},
		{"colon in name", "users:\n- name: 'a:b'\n", "may not contain ':'"},
		{"no name", "users:\n- permissions: [all]\n", "name is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseUsers([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if u, err := parseUsers(nil); err != nil || len(u.byName) != 0 || u.dummy == nil {
		t.Fatalf("empty file: %v %v", u, err)
	}
}

func TestPasswordBothHashKinds(t *testing.T) {
	body := fmt.Sprintf("users:\n- name: argon\n  password_hash: '%s'\n  permissions: [query, status]\n"+
		"- name: bcrypt\n  password_hash: '%s'\n  permissions: [all]\n- name: certonly\n  permissions: [query]\n"+
		"- name: '*'\n  permissions: [status]\n", mustHash(t, "pa55"), bcryptOf(t, "b-pass"))
	s, _, _ := openStore(t, body, Options{})
	ctx := context.Background()
	if id, err := s.Password(ctx, "1.2.3.4", "argon", "pa55"); err != nil || id.Name != "argon" || id.Permissions != Query|Status {
		t.Fatalf("argon: %+v %v", id, err)
	}
	if id, err := s.Password(ctx, "1.2.3.4", "bcrypt", "b-pass"); err != nil || id.Permissions != All {
		t.Fatalf("bcrypt: %+v %v", id, err)
	}
	for _, c := range [][2]string{{"argon", "wrong"}, {"bcrypt", "pa55"}, {"nobody", "pa55"}, {"certonly", ""},
		{"*", ""}, {"argon", ""}} {
		if _, err := s.Password(ctx, "1.2.3.4", c[0], c[1]); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%v: got %v, want ErrInvalidCredentials", c, err)
		}
	}
	if id, ok := s.User("certonly"); !ok || id.Permissions != Query {
		t.Errorf("User(certonly) = %+v %v", id, ok)
	}
	if _, ok := s.User("nobody"); ok {
		t.Error("User(nobody) exists")
	}
	if id := s.Anonymous(); id.Name != Anonymous || id.Permissions != Status {
		t.Errorf("Anonymous = %+v", id)
	}
}

func TestHashPasswordAndNewToken(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"))
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	tok, th, err := NewToken("ci")
	if err != nil || !strings.HasPrefix(tok, "ci.") || len(tok) < 40 {
		t.Fatalf("NewToken = %q, %v", tok, err)
	}
	if _, _, err := NewToken("a.b"); err == nil {
		t.Error("NewToken accepted a name with '.'")
	}
	body := fmt.Sprintf("users:\n- name: u\n  password_hash: '%s'\n  permissions: [query]\n"+
		"tokens:\n- name: ci\n  token_hash: '%s'\n  permissions: [execute]\n", h, th)
	s, _, _ := openStore(t, body, Options{})
	ctx := context.Background()
	if id, err := s.Password(ctx, "p", "u", "correct horse"); err != nil || id.Permissions != Query {
		t.Fatalf("password: %+v %v", id, err)
	}
	if id, err := s.Token(ctx, "p", tok); err != nil || id.Name != "ci" || id.Permissions != Execute {
		t.Fatalf("token: %+v %v", id, err)
	}
	for _, bad := range []string{tok + "x", "ci.", ".x", "nodot", "", "u.correct horse"} {
		if _, err := s.Token(ctx, "p", bad); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	// A token's secret is not a password, nor the reverse.
	if _, err := s.Password(ctx, "p", "ci", strings.TrimPrefix(tok, "ci.")); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("token as password: %v", err)
	}
}

// countingHash counts verifications, to see what the cache saves.
type countingHash struct {
	hash
	n  *int
	mu *sync.Mutex
}

func (c countingHash) verify(secret []byte) bool {
	c.mu.Lock()
	*c.n++
	c.mu.Unlock()
	return c.hash.verify(secret)
}

func countVerifications(s *Store, name string) *int {
	n, mu := new(int), &sync.Mutex{}
	u := s.current.Load()
	u.byName[name].secret = countingHash{hash: u.byName[name].secret, n: n, mu: mu}
	return n
}

func TestCacheAndInvalidationOnReload(t *testing.T) {
	body := "users:\n- name: a\n  password_hash: '" + mustHash(t, "one") + "'\n  permissions: [query]\n"
	s, path, _ := openStore(t, body, Options{ReloadCheck: time.Hour})
	n := countVerifications(s, "a")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Password(ctx, "p", "a", "one"); err != nil {
			t.Fatal(err)
		}
	}
	if *n != 1 {
		t.Fatalf("5 calls verified %d times, want 1 (cached)", *n)
	}
	if _, err := s.Password(ctx, "p", "a", "two"); !errors.Is(err, ErrInvalidCredentials) || *n != 2 {
		t.Fatalf("wrong password: %v after %d verifications", err, *n)
	}
	// The password changes: the cached "one" must stop working at once.
	writeFile(t, path, "users:\n- name: a\n  password_hash: '"+mustHash(t, "two")+"'\n  permissions: [query, status]\n")
	s.nextCheck.Store(0)
	if _, err := s.Password(ctx, "p", "a", "one"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after reload: %v", err)
	}
	if id, err := s.Password(ctx, "p", "a", "two"); err != nil || id.Permissions != Query|Status {
		t.Fatalf("new password after reload: %+v %v", id, err)
	}
}

func TestCacheExpires(t *testing.T) {
	// A clock that moves a second per reading: every entry has expired by
	// the next call (a real clock may not move between two calls, as on
	// Windows).
	var ticks atomic.Int64
	clock := func() time.Time { return time.Unix(ticks.Add(1), 0) }
	s, _, _ := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n", Options{CacheTTL: time.Nanosecond, Now: clock})
	n := countVerifications(s, "a")
	for i := 0; i < 3; i++ {
		if _, err := s.Password(context.Background(), "p", "a", "one"); err != nil {
			t.Fatal(err)
		}
	}
	if *n != 3 {
		t.Fatalf("verified %d times with an expired cache, want 3", *n)
	}
}

func TestUnknownUserPaysTheDummy(t *testing.T) {
	s, _, _ := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n", Options{})
	u := s.current.Load()
	d, ok := u.dummy.(*argon2Hash)
	if !ok || d.params != cheap {
		t.Fatalf("dummy %T %+v does not cost what the file's hash costs", u.dummy, u.dummy)
	}
	n, mu := new(int), &sync.Mutex{}
	u.dummy = countingHash{hash: u.dummy, n: n, mu: mu}
	if _, err := s.Password(context.Background(), "p", "nobody", "one"); !errors.Is(err, ErrInvalidCredentials) || *n != 1 {
		t.Fatalf("unknown user: %v, dummy verified %d times", err, *n)
	}
	// bcrypt files get a bcrypt dummy of the same cost.
	s2, _, _ := openStore(t, "users:\n- name: b\n  password_hash: '"+bcryptOf(t, "x")+"'\n", Options{})
	if c, err := bcrypt.Cost(s2.current.Load().dummy.(bcryptHash)); err != nil || c != bcrypt.MinCost {
		t.Fatalf("bcrypt dummy cost %d, %v", c, err)
	}
}

func TestThrottlePerPeer(t *testing.T) {
	s, _, logs := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n",
		Options{FailureBurst: 3, FailureEvery: time.Hour})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := s.Password(ctx, "10.0.0.1", "a", "bad"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var th *ThrottledError
	for i := 0; i < 5; i++ {
		if _, err := s.Password(ctx, "10.0.0.1", "a", "one"); !errors.As(err, &th) || th.RetryAfter <= 0 {
			t.Fatalf("after the burst: %v, want ThrottledError", err)
		}
	}
	// Other peers are not affected.
	if _, err := s.Password(ctx, "10.0.0.2", "a", "one"); err != nil {
		t.Fatalf("another peer: %v", err)
	}
	// One log line for the window: the first failure.
	if got := strings.Count(logs.String(), "peer=10.0.0.1"); got != 1 {
		t.Fatalf("%d log lines for the peer, want 1:\n%s", got, logs)
	}
}

func TestThrottleRecovers(t *testing.T) {
	s, _, _ := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n",
		Options{FailureBurst: 1, FailureEvery: 50 * time.Millisecond})
	ctx := context.Background()
	s.Password(ctx, "p", "a", "bad")
	var th *ThrottledError
	if _, err := s.Password(ctx, "p", "a", "one"); !errors.As(err, &th) {
		t.Fatalf("got %v, want throttled", err)
	}
	eventually.Within(t, 10*time.Second, func() error {
		_, err := s.Password(ctx, "p", "a", "one")
		return err
	})
}

func TestReloadKeepsOldOnBadFile(t *testing.T) {
	s, path, logs := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n  permissions: [query]\n", Options{})
	writeFile(t, path, "users:\n- name: a\n  permissions: [nonsense]\n")
	eventually.Within(t, 10*time.Second, func() error {
		s.User("a")
		if !strings.Contains(logs.String(), "users file changed but is invalid") {
			return errors.New("the bad file is not logged yet")
		}
		return nil
	})
	if id, ok := s.User("a"); !ok || id.Permissions != Query {
		t.Fatalf("after a bad file: %+v %v, want the old grant", id, ok)
	}
	for i := 0; i < 3; i++ { // more looks at the same bad file
		s.nextCheck.Store(0)
		s.User("a")
	}
	if n := strings.Count(logs.String(), "is invalid"); n != 1 {
		t.Fatalf("the bad file was logged %d times, want once", n)
	}
	writeFile(t, path, "users:\n- name: b\n  permissions: [status]\n")
	eventually.Within(t, 10*time.Second, func() error {
		if _, ok := s.User("b"); !ok {
			return errors.New("b not loaded yet")
		}
		return nil
	})
	if _, ok := s.User("a"); ok {
		t.Fatal("a survived the reload")
	}
}

func TestReloadFollowsSymlinkSwap(t *testing.T) {
	dir := testdir.New(t, "auth")
	for _, v := range []string{"v1", "v2"} {
		os.Mkdir(filepath.Join(dir, v), 0o700)
		os.WriteFile(filepath.Join(dir, v, "users.yaml"), []byte("users:\n- name: "+v+"\n"), 0o600)
	}
	skipSymlinksOnWindows(t)
	if err := os.Symlink("v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users.yaml")
	if err := os.Symlink(filepath.Join("..data", "users.yaml"), path); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{ReloadCheck: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.User("v1"); !ok {
		t.Fatal("v1 missing")
	}
	if err := os.Symlink("v2", filepath.Join(dir, "..data.new")); err != nil { // as Kubernetes swaps a secret
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data.new"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	eventually.Within(t, 10*time.Second, func() error {
		if _, ok := s.User("v2"); !ok {
			return errors.New("v2 not loaded yet")
		}
		return nil
	})
}

// TestReloadRenameOver: an editor or a deployment tool that writes a new
// file and renames it over the old one (the way to replace a file on
// Windows, where the old one must not be open) is seen too.
func TestReloadRenameOver(t *testing.T) {
	dir := testdir.New(t, "auth")
	path := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(path, []byte("users:\n- name: before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{ReloadCheck: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.User("before"); !ok {
		t.Fatal("before missing")
	}
	tmp := filepath.Join(dir, "users.yaml.new")
	if err := os.WriteFile(tmp, []byte("users:\n- name: after\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("rename over the users file (is it held open?): %v", err)
	}
	eventually.Within(t, 10*time.Second, func() error {
		if _, ok := s.User("after"); !ok {
			return errors.New("the renamed-over file is not loaded yet")
		}
		return nil
	})
}

func TestOpenRefusesBadFile(t *testing.T) {
	path := filepath.Join(testdir.New(t, "auth"), "u.yaml")
	os.WriteFile(path, []byte("users:\n- name: a\n  password_hash: plain\n"), 0o600)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming the file", err)
	}
	if _, err := Open(filepath.Join(testdir.New(t, "auth"), "missing"), Options{}); err == nil {
		t.Fatal("a missing file opened")
	}
}

func TestVerifiersBoundAndContext(t *testing.T) {
	s, _, _ := openStore(t, "users:\n- name: a\n  password_hash: '"+mustHash(t, "one")+"'\n", Options{Verifiers: 1})
	s.verify <- struct{}{} // the only verifier is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Password(ctx, "p", "a", "one"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	<-s.verify
}

// skipSymlinksOnWindows skips a test of Kubernetes' symlink swap on Windows:
// links there need a privilege, and wine makes ones that do not resolve.
// TestReloadRenameOver covers how files are replaced there.
func skipSymlinksOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links: Kubernetes' secret swap is not a Windows thing")
	}
}
