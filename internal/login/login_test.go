package login_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/login"
)

// memStore is a login.Store in memory.
type memStore struct {
	mu      sync.Mutex
	users   map[string]login.User
	secrets map[string][]byte
}

func newStore() *memStore {
	return &memStore{users: map[string]login.User{}, secrets: map[string][]byte{}}
}

func (m *memStore) GetUser(_ context.Context, name string) (login.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok {
		return login.User{}, fmt.Errorf("user %s: %w", name, login.ErrNoUser)
	}
	return u, nil
}

func (m *memStore) PutUser(_ context.Context, u login.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[u.Name] = u
	return nil
}

func (m *memStore) Secret(_ context.Context, name string, value []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.secrets[name]; !ok {
		m.secrets[name] = value
	}
	return m.secrets[name], nil
}

const adminPassword = "admin-secret-1"

// fixture is a store with an admin and a viewer, and an Authenticator on
// it whose clock the test moves.
func fixture(t *testing.T) (*memStore, *login.Authenticator, *time.Time) {
	t.Helper()
	st := newStore()
	if err := login.Ensure(t.Context(), st, adminPassword, "viewer-secret-1", nil); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return st, login.New(st, login.WithClock(func() time.Time { return now }), login.WithTokenTTL(time.Hour)), &now
}

// TestPasswords: a generated password is printed once and stored only
// hashed; a hash a release before this package wrote (PBKDF2 with its own
// iteration count) still checks; a second start keeps the password.
func TestPasswords(t *testing.T) {
	st := newStore()
	var out strings.Builder
	if err := login.Ensure(t.Context(), st, "", "", &out); err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUser(t.Context(), login.AdminUser)
	if err != nil || u.Role != login.RoleAdmin {
		t.Fatalf("admin: %+v %v", u, err)
	}
	gen := strings.Fields(strings.SplitAfter(out.String(), "password ")[1])[0]
	if len(gen) != 20 || strings.Contains(u.PasswordHash, gen) || !strings.HasPrefix(u.PasswordHash, "pbkdf2-sha256$") {
		t.Fatalf("generated %q, stored %q", gen, u.PasswordHash)
	}
	if !login.CheckPassword(u.PasswordHash, gen) || login.CheckPassword(u.PasswordHash, gen+"x") {
		t.Fatal("the stored hash does not check the generated password alone")
	}
	out.Reset()
	if err := login.Ensure(t.Context(), st, "", "", &out); err != nil || out.Len() != 0 {
		t.Fatalf("a second start: %q %v, want nothing printed", out.String(), err)
	}
	const older = "pbkdf2-sha256$1000$dXNlcnN0cmVhbS1zYWx0IQ$mpE1kNEGdaJU2gC4fm/h6RRBR8TiHjTUmQTv4Hr0Z9M"
	if !login.CheckPassword(older, "hunter2-from-1.0") || login.CheckPassword(older, "hunter2") {
		t.Fatal("an earlier release's hash does not check")
	}
	for _, bad := range []string{"", "plain", "$2a$10$abcdefghijklmnopqrstuv", "pbkdf2-sha256$0$AA$AA", "pbkdf2-sha256$1000$!!$AA"} {
		if login.CheckPassword(bad, "") {
			t.Errorf("hash %q matched", bad)
		}
	}
}

// TestTokens: a token is an HS256 JWT with Airflow's claims, signed with
// the install's secret from the store; a tampered one, an expired one,
// alg none or another algorithm, and one issued before a password change
// are refused; the role is the user's current one.
func TestTokens(t *testing.T) {
	st, a, now := fixture(t)
	admin, _ := st.GetUser(t.Context(), login.AdminUser)
	tok, err := a.Token(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWT", tok)
	}
	secret := st.secrets["jwt_secret"]
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != parts[2] {
		t.Fatal("the token is not HS256 over the install's secret")
	}
	var claims map[string]any
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "admin" || claims["role"] != "admin" || claims["iat"] != float64(now.Unix()) ||
		claims["exp"] != float64(now.Add(time.Hour).Unix()) {
		t.Fatalf("claims %v", claims)
	}
	if u, err := a.CheckToken(t.Context(), "a", tok); err != nil || u.Name != "admin" {
		t.Fatalf("the token: %+v %v", u, err)
	}
	// Another process on the store accepts it (the secret is shared).
	if _, err := login.New(st, login.WithClock(func() time.Time { return *now })).CheckToken(t.Context(), "a", tok); err != nil {
		t.Fatalf("another process: %v", err)
	}

	forge := func(header string, c map[string]any, key []byte) string {
		b, _ := json.Marshal(c)
		s := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(b)
		if key == nil {
			return s + "."
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	for name, bad := range map[string]string{
		"tampered":      parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), `"sub":"admin"`, `"sub":"viewer"`, 1))) + "." + parts[2],
		"alg none":      forge(`{"alg":"none","typ":"JWT"}`, claims, nil),
		"HS512 header":  forge(`{"alg":"HS512","typ":"JWT"}`, claims, secret),
		"another key":   forge(`{"alg":"HS256","typ":"JWT"}`, claims, []byte(strings.Repeat("k", 32))),
		"not a JWT":     "admin.123.abc",
		"empty":         "",
		"bad signature": tok + "x",
	} {
		if _, err := a.CheckToken(t.Context(), "b", bad); !errors.Is(err, login.ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}

	// A demoted user's token carries the current role.
	viewerTok, _ := a.Token(t.Context(), admin)
	admin.Role = login.RoleViewer
	_ = st.PutUser(t.Context(), admin)
	if u, err := a.CheckToken(t.Context(), "a", viewerTok); err != nil || u.Role != login.RoleViewer {
		t.Fatalf("demoted: %+v %v", u, err)
	}

	*now = now.Add(time.Hour)
	if _, err := a.CheckToken(t.Context(), "c", tok); !errors.Is(err, login.ErrUnauthorized) {
		t.Fatalf("expired: %v", err)
	}
	*now = now.Add(-time.Hour)
	cli, _ := a.CLIToken(t.Context(), admin)
	if _, err := login.EnsureUser(t.Context(), st, login.AdminUser, login.RoleAdmin, "new-password"); err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{tok, cli} {
		if _, err := a.CheckToken(t.Context(), "c", old); !errors.Is(err, login.ErrUnauthorized) {
			t.Fatal("a token outlived the password it was issued under")
		}
	}
	if _, err := a.Login(t.Context(), "c", login.AdminUser, adminPassword); !errors.Is(err, login.ErrUnauthorized) {
		t.Fatal("the old password still logs in (cached)")
	}
}

// TestRateLimit: MaxFailures failures from an address refuse its logins,
// right or wrong, for Window; other addresses are not affected.
func TestRateLimit(t *testing.T) {
	_, a, now := fixture(t)
	for range login.MaxFailures {
		if _, err := a.Login(t.Context(), "10.0.0.1", login.AdminUser, "guess"); !errors.Is(err, login.ErrUnauthorized) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := a.Login(t.Context(), "10.0.0.1", login.AdminUser, adminPassword); !errors.Is(err, login.ErrTooManyFailures) {
		t.Fatalf("after %d failures: %v, want ErrTooManyFailures", login.MaxFailures, err)
	}
	if _, err := a.CheckToken(t.Context(), "10.0.0.1", "x"); !errors.Is(err, login.ErrTooManyFailures) {
		t.Fatalf("a token from the blocked address: %v", err)
	}
	if _, err := a.Login(t.Context(), "10.0.0.2", login.AdminUser, adminPassword); err != nil {
		t.Fatalf("another address: %v", err)
	}
	*now = now.Add(login.Window)
	if _, err := a.Login(t.Context(), "10.0.0.1", login.AdminUser, adminPassword); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestRequest: basic auth and bearer tokens on a request; RequireAdmin
// lets the admin through, refuses a viewer with ErrForbidden and a wrong
// login with ErrUnauthorized, and no error says the password.
func TestRequest(t *testing.T) {
	st, a, _ := fixture(t)
	viewer, _ := st.GetUser(t.Context(), login.ViewerUser)
	tok, _ := a.Token(t.Context(), viewer)
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := a.Request(r); !errors.Is(err, login.ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
	r.SetBasicAuth(login.AdminUser, adminPassword)
	if err := a.RequireAdmin(r); err != nil {
		t.Fatalf("admin: %v", err)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if err := a.RequireAdmin(r); !errors.Is(err, login.ErrForbidden) {
		t.Fatalf("viewer's token: %v, want ErrForbidden", err)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(login.AdminUser, "wrong-secret-77")
	if err := a.RequireAdmin(r); !errors.Is(err, login.ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret-77") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestSessions: a session is found by its id until it expires or is
// dropped; ids and CSRF tokens are random and distinct.
func TestSessions(t *testing.T) {
	ss := login.NewSessions()
	u := login.User{Name: "admin", Role: login.RoleAdmin}
	a, b := ss.Create(u), ss.Create(u)
	if a.ID == b.ID || a.CSRF == b.CSRF || a.ID == a.CSRF || len(a.ID) < 40 {
		t.Fatalf("ids %q %q, csrf %q %q", a.ID, b.ID, a.CSRF, b.CSRF)
	}
	if got := ss.Get(a.ID); got != a {
		t.Fatalf("Get: %v", got)
	}
	ss.Drop(a.ID)
	if ss.Get(a.ID) != nil || ss.Get("") != nil || ss.Get(b.ID) != b {
		t.Fatal("Drop dropped the wrong session")
	}
	if !b.Expires.After(time.Now().Add(login.SessionTTL - time.Minute)) {
		t.Fatalf("expires %v", b.Expires)
	}
}
