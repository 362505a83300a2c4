// Package login is userstream's logins: users and their roles, password
// hashing, the tokens they log in with (JWT access tokens as Airflow 3's
// simple auth manager issues them, and the web UI's sessions), the rate
// limit on failed logins, and the store they live in.
//
// The scheduler's REST APIs (v1 with basic auth or a token, v2 with a
// token), the web UI and the Kafka Connect REST API all check logins with
// one Authenticator over one Store (the scheduler's metadata store), so a
// user, a password change or a refused address counts the same everywhere.
// Passwords are never kept, logged or put in an error: only their hashes.
package login

import (
	"context"
	"errors"
)

// AdminUser is the name of the admin login, as in the original stack, and
// ViewerUser that of the read-only login.
const (
	AdminUser  = "admin"
	ViewerUser = "viewer"
)

// User is a login: a name, what it may do, and its password's hash
// (HashPassword's form).
type User struct {
	Name         string
	Role         Role
	PasswordHash string
}

// Role is what a login may do: RoleAdmin changes things, RoleViewer only
// reads. It is stored as its text.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Admin reports whether the role may change things.
func (r Role) Admin() bool { return r == RoleAdmin }

// Store keeps the users and the install's token secret. The scheduler's
// metadata stores (SQLite, PostgreSQL) are Stores.
type Store interface {
	// GetUser returns a user, or an error matching ErrNoUser.
	GetUser(ctx context.Context, name string) (User, error)
	// PutUser creates or replaces a user.
	PutUser(ctx context.Context, u User) error
	// Secret returns the secret stored under name; when there is none yet
	// it stores value first. Concurrent callers with different values all
	// get the one that was stored first.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// Errors; errors.Is works on what this package returns.
var (
	// ErrNoUser is matched by a Store's GetUser of an unknown name.
	ErrNoUser = errors.New("no such user")
	// ErrUnauthorized is matched by failed logins: unknown user, wrong
	// password, bad or expired token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrTooManyFailures is matched by a login refused because its address
	// failed MaxFailures times within Window; the credentials were not
	// checked.
	ErrTooManyFailures = errors.New("too many failed logins from this address; wait a minute")
	// ErrNoCredentials is returned by Request for a request with neither
	// basic auth nor a bearer token.
	ErrNoCredentials = errors.New("no credentials: use HTTP basic auth or a bearer token (POST /auth/token)")
	// ErrForbidden is matched by RequireAdmin's error for a login that may
	// read but not change anything.
	ErrForbidden = errors.New("forbidden")
)
