// Package postgres is the scheduler's production metadata store: DAGs, runs,
// tries, logs and users in PostgreSQL (as Airflow's), with River's job tables.
//
// It uses pgx v5 through one pgxpool, shared by the store's queries and by
// the River clients Queue returns (riverpgxv5). With schema=NAME in the URL
// the store's tables and River's live in schema NAME: the pool's
// search_path is set to it, and River is told the schema explicitly (its
// Config.Schema and rivermigrate's), so River's notification channels are
// NAME.river_* and stores in two schemas of one database never hear each
// other's job notifications.
//
// Open migrates under one PostgreSQL advisory lock (per schema), held on a
// connection of its own: creating the schema, the store's goose migrations
// (embedded SQL, version table scheduler_db_version) and River's
// migrations (rivermigrate, which takes no lock itself) happen in one
// process at a time, so several schedulers starting at once migrate once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/internal/storesql"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultConnectTimeout bounds each new connection (dial and startup)
// unless the URL sets connect_timeout; OpenTimeout bounds Open as a whole,
// waiting for another process's migrations included.
const (
	DefaultConnectTimeout = 10 * time.Second
	OpenTimeout           = 30 * time.Second
)

// VersionTable is goose's version table for the store's migrations: not
// goose's default, so that the sink's migrations and these can share one
// schema without mistaking each other's versions.
const VersionTable = "scheduler_db_version"

// MaxSchemaLen is the longest schema name: River prefixes its notification
// channels with "SCHEMA." and PostgreSQL channel names end at 63 bytes.
const MaxSchemaLen = 46

const name = "postgres metadata store"

// Store is the metadata store on one PostgreSQL database (and schema); its
// methods but Queue are the SQL both drivers share (storesql), run through
// database/sql on the pool (pgx's stdlib, which keeps no idle connections
// of its own away from River). It is safe for concurrent use, also from
// several processes. Close waits for calls in progress and closes the
// pool; stop the queues from Queue first.
type Store struct {
	*storesql.Store // every method but Queue, through database/sql on the pool
	pool            *pgxpool.Pool
	schema          string // "": the server's search_path
}

var (
	_ scheduler.Store = (*Store)(nil)
	_ scheduler.Queue = (*river.Client[pgx.Tx])(nil)
)

// validSchema reports whether schema= names a schema River can use: a
// plain identifier (letters, digits, _; not starting with a digit, as
// River's own check wants) of at most MaxSchemaLen bytes.
func validSchema(s string) bool {
	if s == "" || len(s) > MaxSchemaLen || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// Open connects to the PostgreSQL database the URL names and migrates the
// store's tables and River's to their newest versions. The URL is a
// libpq/pgx URL (postgres://user:pass@host:5432/db?sslmode=disable&pool_max_conns=8,
// or postgresql://...) with one parameter of userstream's own, removed
// before connecting:
//
//	schema=NAME   keep the tables (the store's and River's) in schema NAME,
//	              created if missing; the connections' search_path is set
//	              to it. Default: the server's search_path, normally public.
//
// Errors never contain the password. The context bounds only the opening,
// which gives up after OpenTimeout; a connection that does not answer
// within DefaultConnectTimeout (or the URL's connect_timeout) fails.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url errors quote the input: say only what is wrong.
		return nil, fmt.Errorf("%s: the URL does not parse; want postgres://user:pass@host:5432/db?sslmode=disable", name)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("%s: URL scheme is %q, want postgres or postgresql", name, u.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// Its error quotes the text it choked on: a piece of a password.
		return nil, fmt.Errorf("%s: URL query parameters do not parse (use & between them, no ;, and write a %% in a value as %%25)", name)
	}
	schema := q.Get("schema")
	if schema != "" && !validSchema(schema) {
		return nil, fmt.Errorf("%s: schema %q is not a plain identifier of at most %d characters (letters, digits, _)", name, schema, MaxSchemaLen)
	}
	q.Del("schema")
	u.RawQuery = q.Encode()
	where := u.Host + u.Path
	if schema != "" {
		where += "?schema=" + schema
	}

	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, where, redact.Error(err, rawURL))
	}
	if schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	if !q.Has("connect_timeout") {
		// A server that accepts connections and never answers must not
		// hang a connect for ever.
		pcfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, OpenTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s %s: connect: %w", name, where, err)
	}
	if err := migrate(ctx, pcfg.ConnConfig, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s %s: migrate: %w", name, where, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	d := storesql.Dialect{Name: name, Numbered: true, Time: microseconds, NoLimit: nil, Classify: classify}
	release := func() error {
		err := db.Close()
		pool.Close()
		return err
	}
	return &Store{Store: storesql.New(db, d, release), pool: pool, schema: schema}, nil
}

// lockKey is the advisory lock key of migrations in schema: one key a
// schema, so stores of different schemas (tests) migrate in parallel, and
// not goose's default key, so the sink's migrations do not wait for ours.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("userstream scheduler metadata store\x00" + schema))
	return int64(h.Sum64())
}

// migrate creates the schema and applies the store's and River's
// migrations while holding the schema's advisory lock. The lock is taken
// with the blocking pg_advisory_lock on a connection outside the pool and
// released by closing it, so a crash in between cannot leave it held, and
// the pool keeps all its connections for goose and River.
func migrate(ctx context.Context, ccfg *pgx.ConnConfig, pool *pgxpool.Pool, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, ccfg.Copy())
	if err != nil {
		return fmt.Errorf("connect for the migration lock: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey(schema)); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithTableName(VersionTable))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{
		Schema: schema, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: %w", err)
	}
	return nil
}

// Schema returns the schema the URL named ("" for the server's
// search_path).
func (s *Store) Schema() string { return s.schema }

// Queue returns a River client on the store's pool (riverpgxv5), built
// with cfg. cfg.Schema may be left empty: the client gets the store's
// schema, where Open migrated River's tables; another schema is an error.
// Stop the client before Close.
func (s *Store) Queue(cfg *river.Config) (scheduler.Queue, error) {
	leave, err := s.Enter("queue")
	if err != nil {
		return nil, err
	}
	defer leave()
	if cfg == nil {
		return nil, fmt.Errorf("%s: queue: no river.Config", name)
	}
	c := *cfg
	switch {
	case c.Schema == "":
		c.Schema = s.schema
	case c.Schema != s.schema:
		return nil, fmt.Errorf("%s: queue: River's tables are in schema %q, not %q (leave Config.Schema empty)", name, s.schema, c.Schema)
	}
	client, err := river.NewClient(riverpgxv5.New(s.pool), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: queue: %w", name, err)
	}
	return client, nil
}

// classify says what a PostgreSQL error means to the store: a taken unique
// key (23505) or a missing parent row (foreign key, 23503).
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return scheduler.ErrExists
		case "23503":
			return scheduler.ErrNotFound
		}
	}
	return nil
}

// microseconds gives a time as stored: the instant truncated to
// PostgreSQL's microsecond (truncated, not rounded, as the SQLite store
// does), in UTC.
func microseconds(t time.Time) any { return t.UTC().Truncate(time.Microsecond) }
