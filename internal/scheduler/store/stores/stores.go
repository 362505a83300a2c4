// Package stores opens a scheduler metadata store from its URL:
// sqlite:PATH (the embedded default) or postgres://... (as Airflow's).
package stores

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/postgres"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
)

// Schemes is what a metadata URL may look like, for messages.
const Schemes = "sqlite:PATH (e.g. sqlite:./data/meta.db) or postgres://user:pass@host:5432/db"

// ErrBadURL is matched by the error of a URL that names no store. It never
// echoes the URL (it may hold a password).
var ErrBadURL = errors.New("not a metadata store URL")

// Open opens the store rawURL names.
func Open(ctx context.Context, rawURL string) (scheduler.Store, error) {
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || strings.ContainsAny(scheme, "/@") {
		return nil, fmt.Errorf("%w (no scheme); use %s", ErrBadURL, Schemes)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if _, err := sqlite.ParseURL(rawURL); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		s, err := sqlite.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres", "postgresql":
		s, err := postgres.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: unknown scheme %q; use %s", ErrBadURL, scheme, Schemes)
}
