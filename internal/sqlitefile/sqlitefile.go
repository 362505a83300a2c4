// Package sqlitefile is what the two SQLite drivers, the sink
// (sink/sqlite) and the scheduler's metadata store
// (scheduler/store/sqlite), share about a database file: the form of its
// URL, and the lock under which a process opens and migrates it.
package sqlitefile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Memory is the path that opens a private in-memory database
// (sqlite::memory:), gone when it is closed. Meant for tests.
const Memory = ":memory:"

// ParseURL returns the file path a sqlite: URL names. Accepted forms:
//
//	sqlite:./data/x.db     relative to the working directory
//	sqlite:data/x.db       the same
//	sqlite:///var/lib/x.db absolute (/var/lib/x.db)
//	sqlite:/var/lib/x.db   absolute too
//	sqlite::memory:        private in-memory database (tests)
//
// The path is taken literally: no percent-decoding, and no query parameters
// (the drivers' pragmas are fixed). Anything else is an error that starts
// with who ("sqlite sink") and shows example, a relative path such as
// "./data/users.db", in the form to use.
func ParseURL(rawURL, who, example string) (string, error) {
	scheme, rest, ok := strings.Cut(rawURL, ":")
	if !ok || !strings.EqualFold(scheme, "sqlite") {
		return "", fmt.Errorf("%s: URL must start with sqlite: (e.g. sqlite:%s)", who, example)
	}
	if strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("%s: URL %q: query parameters and fragments are not supported (the path may not contain ? or #)", who, rawURL)
	}
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" {
		return "", fmt.Errorf("%s: URL %q names no file; use sqlite:%s or sqlite:///abs/path.db", who, rawURL, example)
	}
	return rest, nil
}

// Lock creates the directory of the database at path when missing and
// takes the lock under which one opener at a time, in this process or
// another, opens and migrates it; release drops it. Hold it from before
// the first connection until the migrations are applied. Memory needs no
// lock: release does nothing.
//
// Two things need it. The first connection to a new file switches it to
// WAL, and SQLite fails a second connection doing the same at that moment
// with SQLITE_BUSY at once, without waiting in the busy handler (to avoid
// a deadlock). And goose and rivermigrate read the applied versions before
// they take SQLite's write lock, so two openers of a fresh file would both
// apply a version and the second would fail on the tables the first has
// just created. SQLite has no advisory lock, and holding the database's
// own write lock on a second connection would lock out the opener; so the
// lock is the write lock of a small file beside the database,
// path+".lock" (empty; kept, as it is cheaper to keep than to remove
// safely). It waits up to 30 s for another opener, or until ctx is done,
// and the operating system drops it if the process dies.
//
// On a full disk the lock file cannot be written: an existing database is
// then opened without it, a new one fails.
func Lock(ctx context.Context, path string) (release func(), err error) {
	if path == Memory {
		return func() {}, nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create directory for %s: %w", path, err)
		}
	}
	lock, err := sql.Open("sqlite", path+".lock?_pragma=busy_timeout(30000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open lock %s.lock: %w", path, err)
	}
	// BEGIN IMMEDIATE takes the lock file's write lock (waiting up to the
	// busy timeout for another opener's); the rollback releases it.
	tx, err := lock.BeginTx(ctx, nil)
	if err != nil {
		lock.Close()
		if diskFull(err) {
			if _, serr := os.Stat(path); serr == nil {
				// An existing database is still read on a full disk (users
				// count while the sink waits for space): the races the lock
				// prevents need a write, which the full disk refuses anyway.
				return func() {}, nil
			}
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	return func() { _ = tx.Rollback(); lock.Close() }, nil
}

// diskFull reports whether err is SQLite's SQLITE_FULL (13).
func diskFull(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 13
}
