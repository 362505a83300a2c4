package main

import (
	"context"
	"errors"

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

// openLogins opens the metadata store and makes sure it has its logins
// (scheduler.EnsureLogins).
func openLogins(ctx context.Context, a *app, rawURL, password, viewer string) (scheduler.Store, error) {
	st, err := openMetadata(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if err := scheduler.EnsureLogins(ctx, st, password, viewer, a.stdout); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
