//go:build !unix

package filelock

import (
	"errors"
	"fmt"
)

func tryLock(path string) (func() error, error) {
	return nil, fmt.Errorf("lock %s: %w", path, errors.ErrUnsupported)
}
