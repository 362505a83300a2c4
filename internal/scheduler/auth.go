package scheduler

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AdminUser is the name of the admin login, as in the original stack, and
// ViewerUser that of the read-only login.
const (
	AdminUser  = "admin"
	ViewerUser = "viewer"
)

// hashIterations is PBKDF2-SHA256's work factor. A check costs tens of
// milliseconds; verified credentials are cached, so a REST client sending
// basic auth on every call pays it once.
const hashIterations = 120_000

// HashPassword returns a salted PBKDF2-SHA256 hash of password, in the
// form pbkdf2-sha256$ITERATIONS$SALT$HASH (base64).
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, hashIterations, 32)
	if err != nil {
		return "", err
	}
	b := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", hashIterations, b.EncodeToString(salt), b.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	b := base64.RawStdEncoding
	salt, err1 := b.DecodeString(parts[2])
	want, err2 := b.DecodeString(parts[3])
	if err != nil || err1 != nil || err2 != nil || iter < 1 {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// GeneratePassword returns a random password of 20 letters and digits.
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// EnsureUser makes sure the store has the login name with role. With a
// password given, that becomes the login's password (hashed); without
// one, an existing login is left alone and a missing one gets a generated
// password, which is returned (the caller prints it once: it is not kept
// anywhere in clear). generated is "" otherwise.
func EnsureUser(ctx context.Context, st Store, name string, role Role, password string) (generated string, err error) {
	u, err := st.GetUser(ctx, name)
	switch {
	case err == nil && password == "":
		return "", nil
	case err == nil && CheckPassword(u.PasswordHash, password) && u.Role == role:
		return "", nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", err
	}
	if password == "" {
		password = GeneratePassword()
		generated = password
	}
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	if err := st.PutUser(ctx, User{Name: name, Role: role, PasswordHash: hash}); err != nil {
		return "", err
	}
	return generated, nil
}

// ErrUnauthorized is matched by failed logins: unknown user, wrong
// password, bad or expired token.
var ErrUnauthorized = errors.New("unauthorized")

// Authenticator checks logins against the store's users and issues and
// checks bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu     sync.Mutex
	seen   map[[32]byte]User      // credential digests already verified
	failed map[string][]time.Time // recent failed logins by client address
}

// MaxLoginFailures failed logins (or bad tokens) from one client address
// within LoginWindow refuse that address's logins for the rest of the
// window: a password cannot be guessed faster than that, through the REST
// API and the UI together (they share the Authenticator).
const (
	MaxLoginFailures = 10
	LoginWindow      = time.Minute
)

// ErrTooManyFailures is matched by a LoginFrom or CheckTokenFrom refused
// because its address failed MaxLoginFailures times within LoginWindow. The
// credentials were not checked.
var ErrTooManyFailures = errors.New("too many failed logins from this address; wait a minute")

// LoginFrom is Login for a client at addr (its IP), rate limited: see
// MaxLoginFailures.
func (a *Authenticator) LoginFrom(ctx context.Context, addr, name, password string) (User, error) {
	if a.blocked(addr) {
		return User{}, ErrTooManyFailures
	}
	u, err := a.Login(ctx, name, password)
	if errors.Is(err, ErrUnauthorized) {
		a.fail(addr)
	}
	return u, err
}

// CheckTokenFrom is CheckToken for a client at addr, rate limited as
// LoginFrom.
func (a *Authenticator) CheckTokenFrom(ctx context.Context, addr, token string) (User, error) {
	if a.blocked(addr) {
		return User{}, ErrTooManyFailures
	}
	u, err := a.CheckToken(ctx, token)
	if errors.Is(err, ErrUnauthorized) {
		a.fail(addr)
	}
	return u, err
}

func (a *Authenticator) blocked(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	recent := a.failed[addr][:0]
	for _, t := range a.failed[addr] {
		if a.now().Sub(t) < LoginWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(a.failed, addr)
	} else {
		a.failed[addr] = recent
	}
	return len(recent) >= MaxLoginFailures
}

func (a *Authenticator) fail(addr string) {
	a.mu.Lock()
	if len(a.failed) > 10000 { // a flood of addresses: forget, rather than grow
		clear(a.failed)
	}
	a.failed[addr] = append(a.failed[addr], a.now())
	a.mu.Unlock()
}

// ErrNoCredentials is returned by Request for a request with neither basic
// auth nor a bearer token.
var ErrNoCredentials = errors.New("no credentials: use HTTP basic auth or a bearer token (POST /auth/token)")

// Request checks an HTTP request's bearer token or basic auth, rate
// limited by the client's address (see MaxLoginFailures). Errors:
// ErrNoCredentials, ErrUnauthorized, ErrTooManyFailures, or the store's.
func (a *Authenticator) Request(r *http.Request) (User, error) {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return a.CheckTokenFrom(r.Context(), addr, strings.TrimPrefix(h, "Bearer "))
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return User{}, ErrNoCredentials
	}
	return a.LoginFrom(r.Context(), addr, name, pass)
}

// NewAuthenticator returns an Authenticator; tokens live for ttl [24h].
func NewAuthenticator(st Store, ttl time.Duration) *Authenticator {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &Authenticator{store: st, ttl: ttl, now: time.Now, seen: map[[32]byte]User{}, failed: map[string][]time.Time{}}
}

// Login checks a user name and password.
func (a *Authenticator) Login(ctx context.Context, name, password string) (User, error) {
	u, err := a.store.GetUser(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, ErrUnauthorized
		}
		return User{}, err
	}
	// The digest covers the stored hash too: a changed password
	// invalidates what was cached.
	digest := sha256.Sum256([]byte(u.PasswordHash + "\x00" + name + "\x00" + password))
	a.mu.Lock()
	cached, ok := a.seen[digest]
	a.mu.Unlock()
	if ok {
		return cached, nil
	}
	if !CheckPassword(u.PasswordHash, password) {
		return User{}, ErrUnauthorized
	}
	a.mu.Lock()
	if len(a.seen) > 1000 {
		clear(a.seen)
	}
	a.seen[digest] = u
	a.mu.Unlock()
	return u, nil
}

// Token issues a bearer token for a user who logged in: it names the user
// and its expiry and is signed with a key derived from the user's password
// hash, so changing the password revokes every token.
func (a *Authenticator) Token(u User) string {
	exp := a.now().Add(a.ttl).Unix()
	body := base64.RawURLEncoding.EncodeToString([]byte(u.Name)) + "." + strconv.FormatInt(exp, 10)
	return body + "." + a.sign(u, body)
}

func (a *Authenticator) sign(u User, body string) string {
	m := hmac.New(sha256.New, []byte("userstream token\x00"+u.PasswordHash))
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckToken returns the user a bearer token names, if it is valid.
func (a *Authenticator) CheckToken(ctx context.Context, token string) (User, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return User{}, ErrUnauthorized
	}
	name, err := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || a.now().Unix() > exp {
		return User{}, ErrUnauthorized
	}
	u, err := a.store.GetUser(ctx, string(name))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, ErrUnauthorized
		}
		return User{}, err
	}
	if !hmac.Equal([]byte(a.sign(u, parts[0]+"."+parts[1])), []byte(parts[2])) {
		return User{}, ErrUnauthorized
	}
	return u, nil
}

// ErrForbidden is matched by RequireAdmin's error for a login that may
// read but not change anything.
var ErrForbidden = errors.New("forbidden")

// RequireAdmin checks r's login (basic auth or a bearer token) and allows
// only an admin: a wrong login is an error saying so, a viewer's one that
// matches ErrForbidden.
func (a *Authenticator) RequireAdmin(r *http.Request) error {
	u, err := a.Request(r)
	switch {
	case errors.Is(err, ErrUnauthorized):
		return errors.New("wrong user name, password or token")
	case err != nil:
		return err
	case u.Role != RoleAdmin:
		return fmt.Errorf("user %q (%s) may read but not change anything: %w", u.Name, u.Role, ErrForbidden)
	}
	return nil
}

// EnsureLogins makes sure st has the admin login (with password, or a
// generated one printed once to w, since it is kept nowhere in clear) and,
// when viewer is not empty, the read-only login ViewerUser with that
// password.
func EnsureLogins(ctx context.Context, st Store, password, viewer string, w io.Writer) error {
	generated, err := EnsureUser(ctx, st, AdminUser, RoleAdmin, password)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(w, "Created the admin login: user %s, password %s\n(shown once; set USERSTREAM_ADMIN_PASSWORD to choose it)\n", AdminUser, generated)
	}
	if viewer != "" {
		if _, err := EnsureUser(ctx, st, ViewerUser, RoleViewer, viewer); err != nil {
			return fmt.Errorf("viewer login: %w", err)
		}
	}
	return nil
}
