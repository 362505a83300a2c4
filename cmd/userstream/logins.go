package main

import (
	"context"
	"errors"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
	"github.com/userstream/userstream/internal/stack"
)

// openMetadata opens the scheduler's metadata store a --metadata URL names;
// a URL of the wrong form is wrong usage.
func openMetadata(ctx context.Context, rawURL string) (scheduler.Store, error) {
	return badMetadataURL(stores.Open(ctx, rawURL))
}

// openLogins is stack.OpenLogins with the flags' values; a --metadata URL
// of the wrong form is wrong usage.
func openLogins(ctx context.Context, a *app, rawURL, password, viewer string) (scheduler.Store, error) {
	return badMetadataURL(stack.OpenLogins(ctx, rawURL, password, viewer, a.stdout))
}

func badMetadataURL(st scheduler.Store, err error) (scheduler.Store, error) {
	if err != nil {
		return nil, badMetadataURLErr(err)
	}
	return st, nil
}

// badMetadataURLErr makes a --metadata URL of the wrong form wrong usage.
func badMetadataURLErr(err error) error {
	if errors.Is(err, stores.ErrBadURL) {
		return usagef("--metadata: %v", err)
	}
	return err
}
