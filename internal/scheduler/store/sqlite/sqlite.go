// Package sqlite is the scheduler's embedded metadata store: DAGs, runs,
// tries, logs and users in one SQLite file, with River's job tables beside them.
//
// It uses modernc.org/sqlite (pure Go) in WAL mode with a busy timeout, and
// one connection for everything: riversqlite wants a pool of one (SQLite
// allows one writer, and River's parallel internal operations would
// otherwise fail with SQLITE_BUSY), and sharing that connection with the
// store's own queries keeps River and the store from locking each other out.
// So no method holds a transaction or an open result set while it does
// anything else on the database, and neither must River's workers. Several
// processes may open one file; they wait for each other's writes (busy
// timeout) instead of failing.
//
// Open migrates the store's tables with goose (embedded SQL, version table
// scheduler_db_version) and River's with rivermigrate, one process at a
// time (under sqlitefile.Lock, the write lock of the file PATH.lock beside
// the database, which the sink takes too).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	sqlitedrv "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/internal/storesql"
	"github.com/userstream/userstream/internal/sqlitefile"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Memory is the path that opens a private in-memory database
// (sqlite::memory:), gone when the store is closed. Meant for tests.
const Memory = sqlitefile.Memory

// VersionTable is goose's version table for the store's migrations: not
// goose's default, so that the sink's migrations and these can share one
// file without mistaking each other's versions.
const VersionTable = "scheduler_db_version"

// pragmas are applied to every connection. busy_timeout first (the driver
// orders it so), so the others never fail with SQLITE_BUSY; foreign keys
// make deleting a run delete its tries and logs; _txlock=immediate makes
// every transaction (River's too) take the write lock at BEGIN, so writers
// of two processes wait for each other instead of failing on a lock upgrade.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// timeLayout is how times are stored: UTC text in RFC 3339 with six
// fraction digits, fixed width.
const timeLayout = "2006-01-02T15:04:05.000000Z"

const name = "sqlite metadata store"

// Store is the metadata store on one SQLite database; its methods but
// Queue are the SQL both drivers share (storesql). It is safe for
// concurrent use. Close waits for calls in progress and closes the
// database; stop the queues from Queue first.
type Store struct {
	*storesql.Store // every method but Queue
	db              *sql.DB
	path            string
}

var (
	_ scheduler.Store = (*Store)(nil)
	_ scheduler.Queue = (*river.Client[*sql.Tx])(nil)
)

// ParseURL returns the file path a metadata URL names: sqlite:PATH, as
// sqlitefile.ParseURL reads it (sqlite:./data/meta.db, sqlite:///abs/m.db,
// sqlite::memory:).
func ParseURL(rawURL string) (string, error) {
	return sqlitefile.ParseURL(rawURL, name, "./data/meta.db")
}

// Open opens (creating it and its parent directory when missing) the SQLite
// database the URL names (see ParseURL) and migrates the store's tables and
// River's to their newest versions. The context bounds only the opening.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	path, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// Opened and migrated one process at a time (see sqlitefile.Lock): the
	// first connection switches a new file to WAL, and the migrations read
	// the applied versions before they write.
	release, err := sqlitefile.Lock(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer release()
	db, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, path, err)
	}
	// One connection for the store and River (see the package doc); for
	// :memory: it is also what keeps the one database (each connection to
	// :memory: is a database of its own).
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s: open: %w", name, path, err)
	}
	if err := migrateOnce(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s: migrate: %w", name, path, err)
	}
	d := storesql.Dialect{Name: name, Time: formatTime, NoLimit: -1, Classify: classify}
	return &Store{Store: storesql.New(db, d, db.Close), db: db, path: path}, nil
}

func migrateOnce(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithTableName(VersionTable))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	m, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: %w", err)
	}
	return nil
}

// Path returns the database file's path (or ":memory:").
func (s *Store) Path() string { return s.path }

// Queue returns a River client on the store's database (riversqlite on the
// store's one connection), built with cfg. Stop it before Close.
func (s *Store) Queue(cfg *river.Config) (scheduler.Queue, error) {
	leave, err := s.Enter("queue")
	if err != nil {
		return nil, err
	}
	defer leave()
	c, err := river.NewClient(riversqlite.New(s.db), cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: queue: %w", name, err)
	}
	return c, nil
}

// classify says what a SQLite error means to the store: a taken unique or
// primary key, or a missing parent row (foreign key).
func classify(err error) error {
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return scheduler.ErrExists
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return scheduler.ErrNotFound
		}
	}
	return nil
}

// formatTime stores a time as UTC text with six fraction digits (the
// store's precision; Format truncates), so the text order of a column is
// the time order (years 0000 to 9999).
func formatTime(t time.Time) any { return t.UTC().Format(timeLayout) }
