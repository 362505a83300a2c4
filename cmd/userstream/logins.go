package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
)

// openMetadata opens the scheduler's metadata store a --metadata URL names;
// a URL of the wrong form is wrong usage.
func openMetadata(ctx context.Context, rawURL string) (scheduler.Store, error) {
	st, err := stores.Open(ctx, rawURL)
	if errors.Is(err, stores.ErrBadURL) {
		return nil, usagef("--metadata: %v", err)
	}
	return st, err
}

// openLogins opens the metadata store and makes sure it has the admin
// login (created with password, or a generated one printed once) and, when
// viewer is not empty, the read-only login "viewer" with that password.
func openLogins(ctx context.Context, a *app, rawURL, password, viewer string) (scheduler.Store, error) {
	st, err := openMetadata(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	generated, err := scheduler.EnsureUser(ctx, st, scheduler.AdminUser, scheduler.RoleAdmin, password)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("admin login: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(a.stdout, "Created the admin login: user %s, password %s\n(shown once; set USERSTREAM_ADMIN_PASSWORD to choose it)\n", scheduler.AdminUser, generated)
	}
	if viewer != "" {
		if _, err := scheduler.EnsureUser(ctx, st, scheduler.ViewerUser, scheduler.RoleViewer, viewer); err != nil {
			st.Close()
			return nil, fmt.Errorf("viewer login: %w", err)
		}
	}
	return st, nil
}
