package storetest

// The logins case: PutUser, GetUser and Secret.

import (
	"bytes"
	"testing"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
)

func testUsers(t *testing.T, h *harness) {
	_, err := h.GetUser(t.Context(), "admin")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(unknown)")
	wantIs(t, err, login.ErrNoUser, "GetUser(unknown)")
	u := login.User{Name: "admin", Role: login.RoleAdmin, PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}
	v := login.User{Name: "viewer", Role: login.RoleViewer, PasswordHash: "h2"}
	for _, x := range []login.User{u, v} {
		if err := h.PutUser(t.Context(), x); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []login.User{u, v} {
		got, err := h.GetUser(t.Context(), x.Name)
		if err != nil || got != x {
			t.Errorf("GetUser(%s) = %+v, %v; want %+v", x.Name, got, err, x)
		}
	}
	u.Role, u.PasswordHash = login.RoleViewer, "new hash"
	if err := h.PutUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if got, err := h.GetUser(t.Context(), "admin"); err != nil || got != u {
		t.Errorf("GetUser after replacing = %+v, %v; want %+v", got, err, u)
	}
	_, err = h.GetUser(t.Context(), "ADMIN")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(name in another case)")

	// The token secret: the first value stored is kept, and every later
	// call, whatever value it offers, gets that one.
	first := bytes.Repeat([]byte{0xA5, 0x00, 0x7F}, 11)
	for i, offer := range [][]byte{first, []byte("another value, never stored")} {
		got, err := h.Secret(t.Context(), "jwt_secret", offer)
		if err != nil || !bytes.Equal(got, first) {
			t.Errorf("Secret call %d = %x, %v; want %x", i+1, got, err, first)
		}
	}
	if got, err := h.Secret(t.Context(), "other", []byte("o")); err != nil || string(got) != "o" {
		t.Errorf("Secret(other) = %q, %v; want its own value", got, err)
	}
}
