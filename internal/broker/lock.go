package broker

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/userstream/userstream/internal/filelock"
)

// lockDir takes an exclusive, non-blocking lock on dir/.lock, so that two
// brokers never write the same data directory. The lock goes away with the
// process, so a killed broker leaves nothing stale behind. Where locks are
// not supported (not unix) it does nothing: do not point two brokers at one
// data directory there.
func lockDir(dir string) (release func() error, err error) {
	release, err = filelock.TryLock(filepath.Join(dir, ".lock"))
	switch {
	case errors.Is(err, filelock.ErrLocked):
		return nil, fmt.Errorf("%w: %s is used by another running broker", ErrDataDirInUse, dir)
	case errors.Is(err, errors.ErrUnsupported):
		return func() error { return nil }, nil
	case err != nil:
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return release, nil
}
