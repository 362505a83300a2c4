package storetest

// The user case: PutUser and GetUser.

import (
	"testing"

	"github.com/userstream/userstream/internal/scheduler"
)

func testUsers(t *testing.T, h *harness) {
	_, err := h.GetUser(t.Context(), "admin")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(unknown)")
	u := scheduler.User{Name: "admin", Role: scheduler.RoleAdmin, PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}
	v := scheduler.User{Name: "viewer", Role: scheduler.RoleViewer, PasswordHash: "h2"}
	for _, x := range []scheduler.User{u, v} {
		if err := h.PutUser(t.Context(), x); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []scheduler.User{u, v} {
		got, err := h.GetUser(t.Context(), x.Name)
		if err != nil || got != x {
			t.Errorf("GetUser(%s) = %+v, %v; want %+v", x.Name, got, err, x)
		}
	}
	u.Role, u.PasswordHash = scheduler.RoleViewer, "new hash"
	if err := h.PutUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if got, err := h.GetUser(t.Context(), "admin"); err != nil || got != u {
		t.Errorf("GetUser after replacing = %+v, %v; want %+v", got, err, u)
	}
	_, err = h.GetUser(t.Context(), "ADMIN")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(name in another case)")
}
