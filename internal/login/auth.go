package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxFailures failed logins (or bad tokens) from one client address
// within Window refuse that address's logins for the rest of the window:
// a password cannot be guessed faster than that, through the REST APIs,
// the UI and Connect together (they share the Authenticator).
const (
	MaxFailures = 10
	Window      = time.Minute
)

// Token lifetimes, Airflow 3's defaults: [api_auth] jwt_expiration_time
// for POST /auth/token, jwt_cli_expiration_time for POST /auth/token/cli.
const (
	DefaultTokenTTL    = 24 * time.Hour
	DefaultCLITokenTTL = time.Hour
)

// secretName is the Store's name of the install's token secret.
const secretName = "jwt_secret"

// Authenticator checks logins against a Store's users, issues and checks
// access tokens (JWTs signed with the install's secret, kept in the
// Store so every process on it accepts the others' tokens), and rate
// limits failures by client address. It is safe for concurrent use.
type Authenticator struct {
	store          Store
	ttl, cliTTL    time.Duration
	now            func() time.Time
	maxSeen, limit int

	mu     sync.Mutex
	secret []byte
	seen   map[[32]byte]User      // credential digests already verified
	failed map[string][]time.Time // recent failures by client address
}

// Option configures an Authenticator.
type Option func(*Authenticator)

// WithTokenTTL sets how long POST /auth/token's tokens hold [DefaultTokenTTL].
func WithTokenTTL(d time.Duration) Option { return func(a *Authenticator) { a.ttl = d } }

// WithCLITokenTTL sets how long POST /auth/token/cli's tokens hold
// [DefaultCLITokenTTL].
func WithCLITokenTTL(d time.Duration) Option { return func(a *Authenticator) { a.cliTTL = d } }

// WithClock sets the clock tokens and the rate limit read [time.Now].
func WithClock(now func() time.Time) Option { return func(a *Authenticator) { a.now = now } }

// New returns an Authenticator over st.
func New(st Store, opts ...Option) *Authenticator {
	a := &Authenticator{store: st, ttl: DefaultTokenTTL, cliTTL: DefaultCLITokenTTL, now: time.Now,
		maxSeen: 1000, limit: 10000, seen: map[[32]byte]User{}, failed: map[string][]time.Time{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Login checks a user name and password for a client at addr (its IP),
// rate limited: see MaxFailures. Errors: ErrUnauthorized,
// ErrTooManyFailures, or the store's.
func (a *Authenticator) Login(ctx context.Context, addr, name, password string) (User, error) {
	return a.limited(addr, func() (User, error) { return a.check(ctx, name, password) })
}

// CheckToken returns the user an access token names, for a client at
// addr, rate limited as Login. The token must be one of Token's or
// CLIToken's, unexpired, and its user must still exist; the role is the
// user's current one, so a demoted user's tokens lose their rights at once.
func (a *Authenticator) CheckToken(ctx context.Context, addr, token string) (User, error) {
	return a.limited(addr, func() (User, error) {
		key, err := a.key(ctx)
		if err != nil {
			return User{}, err
		}
		c, ok := verifyJWT(key, token, a.now())
		if !ok {
			return User{}, ErrUnauthorized
		}
		u, err := a.user(ctx, c.Subject)
		if err != nil {
			return User{}, err
		}
		if !hmac.Equal([]byte(c.Password), []byte(passwordVersion(key, u))) {
			return User{}, ErrUnauthorized // the password changed since
		}
		return u, nil
	})
}

// Token issues an access token for u, holding for the token TTL.
func (a *Authenticator) Token(ctx context.Context, u User) (string, error) {
	return a.issue(ctx, u, a.ttl)
}

// CLIToken issues an access token for u, holding for the CLI token TTL
// (airflowctl's login).
func (a *Authenticator) CLIToken(ctx context.Context, u User) (string, error) {
	return a.issue(ctx, u, a.cliTTL)
}

// TokenTTL is how long Token's tokens hold.
func (a *Authenticator) TokenTTL() time.Duration { return a.ttl }

func (a *Authenticator) issue(ctx context.Context, u User, ttl time.Duration) (string, error) {
	key, err := a.key(ctx)
	if err != nil {
		return "", err
	}
	now := a.now().Unix()
	return signJWT(key, Claims{Subject: u.Name, Role: u.Role, IssuedAt: now, NotBefore: now,
		Expires: now + int64(ttl/time.Second), ID: RandomToken()[:22], Password: passwordVersion(key, u)}), nil
}

// passwordVersion is the Password claim of u's tokens: a digest of its
// password hash keyed with the install's secret (it says nothing of the
// password without the secret).
func passwordVersion(key []byte, u User) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, "password\x00"+u.PasswordHash)[:12])
}

// key returns the install's token secret, created in the store by the
// first process that needs it.
func (a *Authenticator) key(ctx context.Context) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.secret != nil {
		return a.secret, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	s, err := a.store.Secret(ctx, secretName, fresh)
	if err != nil {
		return nil, fmt.Errorf("token secret: %w", err)
	}
	if len(s) < 32 {
		return nil, fmt.Errorf("token secret: the store's is %d bytes, want 32", len(s))
	}
	a.secret = s
	return s, nil
}

// Request checks an HTTP request's bearer token or basic auth, rate
// limited by the client's address. Errors: ErrNoCredentials,
// ErrUnauthorized, ErrTooManyFailures, or the store's.
func (a *Authenticator) Request(r *http.Request) (User, error) {
	addr := ClientAddr(r)
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return a.CheckToken(r.Context(), addr, strings.TrimPrefix(h, "Bearer "))
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return User{}, ErrNoCredentials
	}
	return a.Login(r.Context(), addr, name, pass)
}

// RequireAdmin checks r's login (basic auth or a bearer token) and allows
// only an admin: a wrong login is an error saying so (matching
// ErrUnauthorized), a viewer's one matching ErrForbidden.
func (a *Authenticator) RequireAdmin(r *http.Request) error {
	u, err := a.Request(r)
	switch {
	case errors.Is(err, ErrUnauthorized):
		return fmt.Errorf("wrong user name, password or token: %w", ErrUnauthorized)
	case err != nil:
		return err
	case !u.Role.Admin():
		return fmt.Errorf("user %q (%s) may read but not change anything: %w", u.Name, u.Role, ErrForbidden)
	}
	return nil
}

// ClientAddr is the address a request's failures are counted by: its
// peer's IP.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited runs check unless addr is blocked, and counts its
// ErrUnauthorized against addr.
func (a *Authenticator) limited(addr string, check func() (User, error)) (User, error) {
	if a.blocked(addr) {
		return User{}, ErrTooManyFailures
	}
	u, err := check()
	if errors.Is(err, ErrUnauthorized) {
		a.fail(addr)
	}
	return u, err
}

// check verifies a name and password, caching what it verified.
func (a *Authenticator) check(ctx context.Context, name, password string) (User, error) {
	u, err := a.user(ctx, name)
	if err != nil {
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
	if len(a.seen) > a.maxSeen {
		clear(a.seen)
	}
	a.seen[digest] = u
	a.mu.Unlock()
	return u, nil
}

// user reads a user; an unknown one is ErrUnauthorized.
func (a *Authenticator) user(ctx context.Context, name string) (User, error) {
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, ErrNoUser) {
		return User{}, ErrUnauthorized
	}
	return u, err
}

func (a *Authenticator) blocked(addr string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	recent := a.failed[addr][:0]
	for _, t := range a.failed[addr] {
		if now.Sub(t) < Window {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(a.failed, addr)
	} else {
		a.failed[addr] = recent
	}
	return len(recent) >= MaxFailures
}

func (a *Authenticator) fail(addr string) {
	a.mu.Lock()
	if len(a.failed) > a.limit { // a flood of addresses: forget, rather than grow
		clear(a.failed)
	}
	a.failed[addr] = append(a.failed[addr], a.now())
	a.mu.Unlock()
}
