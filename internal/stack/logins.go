package stack

import (
	"context"
	"io"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
)

// OpenLogins opens the metadata store rawURL names (an error matching
// stores.ErrBadURL for a URL that names none) and makes sure it has its
// logins (login.Ensure): the admin, with adminPassword or, at the first
// start without one, a generated password printed once to out; and the
// read-only viewer when viewerPassword is set. The caller closes the store.
func OpenLogins(ctx context.Context, rawURL, adminPassword, viewerPassword string, out io.Writer) (scheduler.Store, error) {
	st, err := stores.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	if err := login.Ensure(ctx, st, adminPassword, viewerPassword, out); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
