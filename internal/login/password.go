package login

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// hashIterations is PBKDF2-SHA256's work factor. A check costs tens of
// milliseconds; verified credentials are cached, so a REST client sending
// basic auth on every call pays it once.
const hashIterations = 120_000

// HashPassword returns a salted PBKDF2-SHA256 hash of password, in the
// form pbkdf2-sha256$ITERATIONS$SALT$HASH (base64), the form every
// release has stored.
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

// CheckPassword reports whether password matches hash; a hash of another
// form matches nothing.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	b := base64.RawStdEncoding
	salt, err1 := b.DecodeString(parts[2])
	want, err2 := b.DecodeString(parts[3])
	if err != nil || err1 != nil || err2 != nil || iter < 1 || len(want) == 0 {
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

// EnsureUser makes sure st has the login name with role. With a password
// given, that becomes the login's password (hashed); without one, an
// existing login is left alone and a missing one gets a generated
// password, which is returned (the caller prints it once: it is not kept
// anywhere in clear). generated is "" otherwise.
func EnsureUser(ctx context.Context, st Store, name string, role Role, password string) (generated string, err error) {
	u, err := st.GetUser(ctx, name)
	switch {
	case err == nil && password == "":
		return "", nil
	case err == nil && CheckPassword(u.PasswordHash, password) && u.Role == role:
		return "", nil
	case err != nil && !errors.Is(err, ErrNoUser):
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

// Ensure makes sure st has the admin login AdminUser (with password, or,
// when it is missing, a generated one printed once to w, since it is kept
// nowhere in clear) and, when viewer is not empty, the read-only login
// ViewerUser with that password.
func Ensure(ctx context.Context, st Store, password, viewer string, w io.Writer) error {
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
