// Package member gives consumer group members a stable instance id
// (KIP-345 static membership) without configuration: a worker restarted
// on the same host, as systemd, Compose or Kubernetes restart a crashed
// process, gets the id its dead predecessor had and takes its partitions
// back at once, instead of the group waiting a session timeout for the
// dead member.
//
// An id is "<host>-u<uid>-<slot>": the lowest slot of the group whose lock
// file no live process on this host holds. The lock (flock) dies with its
// process, so a SIGKILLed worker's slot is free the moment it is gone, and
// two live workers on one host never hold the same slot. Two hosts with
// the same name (containers given one hostname) would share ids: the
// broker then fences the older member, which the stream reports as an
// error naming the id instead of the two fencing each other in turn.
package member

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/userstream/userstream/internal/filelock"
)

// maxSlots bounds the live members of one group on one host.
const maxSlots = 1024

// Lease is an instance id held by this process until Release.
type Lease struct {
	// ID is the instance id to join the group with.
	ID      string
	release func() error
}

// Release frees the id for the next worker of the group on this host. The
// process's death frees it too.
func (l *Lease) Release() error { return l.release() }

type options struct {
	dir, host string
}

// Option changes how Acquire picks an id.
type Option func(*options)

// Dir keeps the lock files in dir instead of the user's cache directory
// (userstream/members under os.UserCacheDir, else under os.TempDir).
func Dir(dir string) Option { return func(o *options) { o.dir = dir } }

// Host names the host in ids instead of os.Hostname.
func Host(host string) Option { return func(o *options) { o.host = host } }

// Acquire leases the lowest free instance id of group on this host. It
// fails where file locks are unsupported (errors.ErrUnsupported), when no
// lock directory can be made, or when maxSlots workers of the group
// already run here; callers then fall back to dynamic membership.
func Acquire(group string, opts ...Option) (*Lease, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("member: host name: %w", err)
		}
		o.host = h
	}
	if o.dir == "" {
		d, err := lockDir()
		if err != nil {
			return nil, err
		}
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, fmt.Errorf("member: %w", err)
	}
	prefix := filepath.Join(o.dir, url.PathEscape(group)+".")
	for slot := range maxSlots {
		release, err := filelock.TryLock(prefix + strconv.Itoa(slot) + ".lock")
		if errors.Is(err, filelock.ErrLocked) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("member: %w", err)
		}
		id := fmt.Sprintf("%s-u%d-%d", o.host, os.Getuid(), slot)
		return &Lease{ID: id, release: release}, nil
	}
	return nil, fmt.Errorf("member: %d workers of group %s already run on this host", maxSlots, group)
}

// lockDir is the user's private directory of lock files: under the cache
// directory, else under the temporary one, where it must be a directory of
// this user's (not a link another user planted).
func lockDir() (string, error) {
	if base, err := os.UserCacheDir(); err == nil {
		d := filepath.Join(base, "userstream", "members")
		if err := os.MkdirAll(d, 0o700); err == nil {
			return d, nil
		}
	}
	d := filepath.Join(os.TempDir(), "userstream-members-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("member: lock directory: %w", err)
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return "", fmt.Errorf("member: lock directory: %w", err)
	}
	if !fi.IsDir() || !ownedByMe(fi) {
		return "", fmt.Errorf("member: lock directory %s is not a directory of this user's", d)
	}
	return d, nil
}

// Dynamic is the instance id that asks for dynamic membership.
const Dynamic = "none"

// ForGroup returns the instance id a worker of group joins with: given, as
// it is; none for Dynamic; else a leased one (Acquire), which release
// frees. Where none can be leased it warns on log and returns none: the
// worker runs as a dynamic member.
func ForGroup(log *slog.Logger, group, given string) (id string, release func()) {
	switch given {
	case Dynamic:
		return "", func() {}
	case "":
	default:
		return given, func() {}
	}
	l, err := Acquire(group)
	if err != nil {
		log.Warn("no stable instance id; running as a dynamic member (a crashed worker's partitions wait for its session timeout)",
			"group", group, "err", err)
		return "", func() {}
	}
	return l.ID, func() { _ = l.Release() }
}
