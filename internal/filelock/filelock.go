// Package filelock takes exclusive, non-blocking locks on files (flock(2)).
// The kernel drops a lock when its process dies, SIGKILL included, so a
// crashed process never leaves a stale lock behind: the next one to try
// gets it at once.
package filelock

import "errors"

// ErrLocked is returned by TryLock when another open file holds the lock
// (another process, or this one through another call).
var ErrLocked = errors.New("locked by another process")

// TryLock creates path if needed and locks it, or fails at once with an
// error matching ErrLocked. release unlocks it. Where flock is missing
// (not unix), it fails with an error matching errors.ErrUnsupported.
func TryLock(path string) (release func() error, err error) { return tryLock(path) }
