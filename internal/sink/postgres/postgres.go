// Package postgres is the PostgreSQL sink driver: users in table
// created_users, written with pgx v5 through a connection pool.
//
// The table is created and upgraded by goose migrations embedded in the
// binary, under a PostgreSQL advisory lock so that several stream workers
// starting at once migrate once. Each Upsert is atomic (one statement or one
// transaction) and idempotent: ids are deduplicated within the batch (the
// last record wins) and sorted, so overlapping batches written concurrently
// take their row locks in the same order and cannot deadlock.
//
// Three ways of writing a batch are implemented; see Method. The default is
// the one docs/benchmarks.md measured fastest.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/userstream/userstream/internal/closeguard"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Method is how Upsert sends a batch to PostgreSQL.
type Method string

const (
	// MethodValues sends multi-row INSERT ... VALUES ... ON CONFLICT (id) DO
	// UPDATE statements, up to ValuesChunk rows each (PostgreSQL allows
	// 65535 parameters a statement), in one transaction.
	MethodValues Method = "values"
	// MethodUnnest sends one INSERT ... SELECT FROM unnest($1::uuid[], ...)
	// ON CONFLICT statement: one array parameter a column, whatever the
	// batch size.
	MethodUnnest Method = "unnest"
	// MethodCopy copies the batch into a temporary staging table with the
	// COPY protocol and merges it with INSERT ... SELECT ... ON CONFLICT, in
	// one transaction.
	MethodCopy Method = "copy"

	// DefaultMethod is the method Open uses unless told otherwise: the
	// fastest in the benchmarks of docs/benchmarks.md ("## Sinks").
	DefaultMethod = MethodUnnest
)

// DefaultConnectTimeout bounds each new connection (dial and startup)
// unless the URL sets connect_timeout; OpenTimeout bounds Open as a whole.
const (
	DefaultConnectTimeout = 10 * time.Second
	OpenTimeout           = 30 * time.Second
)

// ValuesChunk is the most rows MethodValues puts in one statement: 15
// parameters a row keeps it well under PostgreSQL's 65535.
const ValuesChunk = 1000

// Methods lists every Method, the default first.
var Methods = []Method{MethodUnnest, MethodValues, MethodCopy}

// Option configures Open.
type Option func(*config)

type config struct {
	method   Method
	readOnly bool
}

// ReadOnly makes Open change nothing in the database: no schema is created
// and no migration runs; a database without the table is an error saying
// so. For commands that only read (userstream users).
func ReadOnly() Option { return func(c *config) { c.readOnly = true } }

// WithMethod makes Upsert write batches with m (overriding the URL's
// upsert= parameter).
func WithMethod(m Method) Option { return func(c *config) { c.method = m } }

const columns = `id, first_name, last_name, gender, address, post_code, email, username, dob,
	registered_date, phone, picture, nat, ingested_at, run_id`

const selectColumns = `id::text, first_name, last_name, gender, address, post_code, email, username, dob,
	registered_date, phone, picture, nat, ingested_at, run_id`

const numColumns = 15

const onConflict = ` ON CONFLICT (id) DO UPDATE SET
	first_name = excluded.first_name, last_name = excluded.last_name, gender = excluded.gender,
	address = excluded.address, post_code = excluded.post_code, email = excluded.email,
	username = excluded.username, dob = excluded.dob, registered_date = excluded.registered_date,
	phone = excluded.phone, picture = excluded.picture, nat = excluded.nat,
	ingested_at = excluded.ingested_at, run_id = excluded.run_id, stored_at = excluded.stored_at`

const unnestSQL = `INSERT INTO created_users (` + columns + `, stored_at)
SELECT u.*, now() FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
	$14::timestamptz[], $15::text[]) AS u` + onConflict

const stagingSQL = `CREATE TEMP TABLE IF NOT EXISTS created_users_staging
	(LIKE created_users INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`

const mergeSQL = `INSERT INTO created_users (` + columns + `, stored_at)
SELECT ` + columns + `, now() FROM created_users_staging ORDER BY id` + onConflict

var copyColumns = []string{"id", "first_name", "last_name", "gender", "address", "post_code", "email",
	"username", "dob", "registered_date", "phone", "picture", "nat", "ingested_at", "run_id"}

// Sink stores users in one PostgreSQL table. It is safe for concurrent use.
type Sink struct {
	pool   *pgxpool.Pool
	method Method
	where  string // host/db/schema for messages; never the password

	valuesSQL sync.Map // rows in the statement -> SQL text
	upserts   atomic.Int64

	gate *closeguard.Gate
}

var _ sink.Sink = (*Sink)(nil)

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open connects to the PostgreSQL database the URL names and migrates it to
// the newest schema. The URL is a libpq/pgx URL
// (postgres://user:pass@host:5432/db?sslmode=disable&pool_max_conns=8, or
// postgresql://...) with two parameters of userstream's own, removed before
// connecting:
//
//	schema=NAME     keep the table in schema NAME (created if missing; the
//	                connection's search_path is set to it). Default: the
//	                server's search_path, normally public.
//	upsert=METHOD   values, unnest or copy (see Method). Default: DefaultMethod.
//
// Errors never contain the password. The context bounds only the opening,
// which gives up after OpenTimeout; a connection that does not answer within
// DefaultConnectTimeout (or the URL's connect_timeout) fails.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url errors quote the input: say only what is wrong.
		return nil, errors.New("postgres sink: the URL does not parse; want postgres://user:pass@host:5432/db?sslmode=disable")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("postgres sink: URL scheme is %q, want postgres or postgresql", u.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// Its error quotes the text it choked on: a piece of a password.
		return nil, errors.New("postgres sink: URL query parameters do not parse (use & between them, no ;, and write a % in a value as %25)")
	}
	cfg := config{method: DefaultMethod}
	if m := q.Get("upsert"); m != "" {
		cfg.method = Method(m)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if !slices.Contains(Methods, cfg.method) {
		return nil, fmt.Errorf("postgres sink: upsert method %q is not one of values, unnest, copy", cfg.method)
	}
	schema := q.Get("schema")
	if schema != "" && !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("postgres sink: schema %q is not a plain identifier (letters, digits, _; at most 63)", schema)
	}
	q.Del("schema")
	q.Del("upsert")
	u.RawQuery = q.Encode()
	where := u.Host + u.Path
	if schema != "" {
		where += "?schema=" + schema
	}

	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres sink %s: %w", where, redact.Error(err, rawURL))
	}
	if schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	if !q.Has("connect_timeout") {
		// A server that accepts connections and never answers must not
		// hang a connect for ever.
		pcfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	// The opening as a whole (connect, migrate) is bounded as well.
	ctx, cancel := context.WithTimeout(ctx, OpenTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres sink %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres sink %s: connect: %w", where, err)
	}
	if cfg.readOnly {
		if err := checkSchema(ctx, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres sink %s: %w", where, err)
		}
	} else if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres sink %s: migrate: %w", where, err)
	}
	s := &Sink{gate: closeguard.New("postgres sink", sink.ErrClosed), pool: pool, method: cfg.method, where: where}
	if !cfg.readOnly {
		// Start from few count rows, whatever the last writer left.
		if err := s.compact(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres sink %s: %w", where, err)
		}
	}
	return s, nil
}

// checkSchema is a read-only open's check that the schema is whole: the
// table there and every migration this binary has applied. goose applies
// each migration in a transaction of its own, so while a stream creates the
// schema, created_users can be there and user_counts not yet; a reader
// then gets an error matching sink.ErrNoTable, as before the table.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var table, versions *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass('created_users')::text, to_regclass('goose_db_version')::text`).
		Scan(&table, &versions); err != nil {
		return err
	}
	if table == nil {
		return fmt.Errorf("%w: no created_users table there (nothing was stored yet; the stream creates it)", sink.ErrNoTable)
	}
	want, err := newestMigration()
	if err != nil {
		return err
	}
	var have int64
	if versions != nil {
		if err := pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&have); err != nil {
			return err
		}
	}
	if have < want {
		return fmt.Errorf("%w: created_users is at schema version %d of %d (a stream is creating it now, or an older userstream made it and a stream of this one upgrades it)",
			sink.ErrNoTable, have, want)
	}
	return nil
}

// newestMigration returns the version of the newest embedded migration
// (the number its file name starts with).
func newestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	var newest int64
	for _, e := range entries {
		digits, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: the name does not start with a version: %w", e.Name(), err)
		}
		newest = max(newest, v)
	}
	return newest, nil
}

// migrate creates the schema when one is named, then applies the embedded
// migrations under goose's advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if schema != "" {
		create := `CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{schema}.Sanitize()
		if _, err := pool.Exec(ctx, create); err != nil {
			// Two sessions creating the schema at once: the loser gets a
			// unique violation though IF NOT EXISTS; by now it exists.
			if _, err = pool.Exec(ctx, create); err != nil {
				return fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Method returns how this sink writes batches.
func (s *Sink) Method() Method { return s.method }

// Upsert stores the batch atomically: every record replaces the row with its
// id, the last one winning when an id appears twice in the batch. An id that
// is not a UUID fails the whole batch (errors.Is(err, user.ErrInvalid))
// before anything is sent; a row PostgreSQL refuses (text over the table's
// 512-byte checks, a NUL byte) fails it with nothing stored, with an error
// matching sink.ErrRejected that carries PostgreSQL's reason. Ids are stored
// in lower case.
func (s *Sink) Upsert(ctx context.Context, batch []user.Record) error {
	if err := s.gate.Enter("upsert"); err != nil {
		return err
	}
	defer s.gate.Leave()
	if len(batch) == 0 {
		return nil
	}
	recs, err := sink.Dedup(batch)
	if err != nil {
		return fmt.Errorf("postgres sink: upsert: %w", err)
	}
	// One lock order for every writer: overlapping concurrent batches wait
	// for each other instead of deadlocking.
	slices.SortFunc(recs, func(a, b user.Record) int { return strings.Compare(a.ID, b.ID) })
	switch s.method {
	case MethodValues:
		err = s.upsertValues(ctx, recs)
	case MethodCopy:
		err = s.upsertCopy(ctx, recs)
	default:
		err = s.upsertUnnest(ctx, recs)
	}
	if err != nil {
		err = fmt.Errorf("postgres sink: upsert %d users (%s): %w", len(recs), s.method, err)
		if reason, ok := dataError(err); ok {
			return sink.Rejected(reason, err)
		}
		return err
	}
	if s.upserts.Add(1)%compactEvery == 0 {
		// The batch is stored; a failed compaction only leaves more count
		// rows for the next one, so its error is not the caller's.
		_ = s.compact(ctx)
	}
	return nil
}

// dataError reports whether err is PostgreSQL refusing the data rather
// than failing as a server, with PostgreSQL's reason: SQLSTATE class 22
// (data exception: a NUL byte or bad UTF-8 in text, 22021; a value out of
// range), class 23 (integrity constraint: the table's length checks, 23514;
// NOT NULL, 23502) and 54000 (a value over a program limit). Retrying the
// same rows would fail the same way; every other error (connection, lock,
// server shutting down, 57P01...) is the server's and worth retrying.
func dataError(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23") && pe.Code != "23505", pe.Code == "54000":
		return fmt.Sprintf("postgres: %s (SQLSTATE %s)", pe.Message, pe.Code), true
	}
	return "", false
}

func ingested(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func (s *Sink) upsertUnnest(ctx context.Context, recs []user.Record) error {
	n := len(recs)
	ids := make([]uuid.UUID, n)
	text := make([][]string, 12)
	for i := range text {
		text[i] = make([]string, n)
	}
	nat, runID := make([]string, n), make([]string, n)
	at := make([]pgtype.Timestamptz, n)
	for i, r := range recs {
		ids[i] = uuid.MustParse(r.ID) // canonical after Dedup
		for j, v := range [...]string{r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode, r.Email,
			r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture} {
			text[j][i] = v
		}
		nat[i], runID[i], at[i] = r.Nat, r.RunID, ingested(r.IngestedAt)
	}
	_, err := s.pool.Exec(ctx, unnestSQL, ids, text[0], text[1], text[2], text[3], text[4], text[5],
		text[6], text[7], text[8], text[9], text[10], nat, at, runID)
	return err
}

// valuesStatement returns the multi-row INSERT for n rows.
func (s *Sink) valuesStatement(n int) string {
	if q, ok := s.valuesSQL.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO created_users (` + columns + `, stored_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range numColumns {
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i*numColumns + j + 1))
			switch j {
			case 0:
				b.WriteString("::uuid")
			case 13:
				b.WriteString("::timestamptz")
			}
			b.WriteByte(',')
		}
		b.WriteString("now())")
	}
	b.WriteString(onConflict)
	q := b.String()
	s.valuesSQL.Store(n, q)
	return q
}

func (s *Sink) upsertValues(ctx context.Context, recs []user.Record) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for chunk := range slices.Chunk(recs, ValuesChunk) {
			args := make([]any, 0, len(chunk)*numColumns)
			for _, r := range chunk {
				args = append(args, r.ID, r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode, r.Email,
					r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat, ingested(r.IngestedAt), r.RunID)
			}
			if _, err := tx.Exec(ctx, s.valuesStatement(len(chunk)), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Sink) upsertCopy(ctx context.Context, recs []user.Record) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stagingSQL); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(recs) {
				return nil, nil
			}
			r := recs[i]
			i++
			return []any{uuid.MustParse(r.ID), r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode,
				r.Email, r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat,
				ingested(r.IngestedAt), r.RunID}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"created_users_staging"}, copyColumns, src); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if _, err := tx.Exec(ctx, mergeSQL); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		return nil
	})
}

// Count returns the number of stored users, exactly: the sum of the
// counts the triggers keep (see Stats), not a scan of the table.
func (s *Sink) Count(ctx context.Context) (int64, error) {
	if err := s.gate.Enter("count"); err != nil {
		return 0, err
	}
	defer s.gate.Leave()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM user_counts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres sink: count: %w", err)
	}
	return n, nil
}

// Recent returns up to n users, the most recently ingested first, ties by
// id, users with no ingested_at last (by id): the first page of Page,
// unfiltered, from the same index. n == 0 returns none; a negative n is an
// error.
func (s *Sink) Recent(ctx context.Context, n int) ([]user.Record, error) {
	if err := s.gate.Enter("recent"); err != nil {
		return nil, err
	}
	defer s.gate.Leave()
	if n < 0 {
		return nil, fmt.Errorf("postgres sink: recent: n is %d, want 0 or more", n)
	}
	if n == 0 {
		return []user.Record{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM created_users
		`+pageOrder+` LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("postgres sink: recent: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (user.Record, error) { return scan(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres sink: recent: %w", err)
	}
	return out, nil
}

// Get returns the user with the id (compared as a UUID, in any case), or an
// error matching sink.ErrNotFound when there is none; an id that is not a
// UUID names no user, so it gives ErrNotFound too.
func (s *Sink) Get(ctx context.Context, id string) (user.Record, error) {
	if err := s.gate.Enter("get"); err != nil {
		return user.Record{}, err
	}
	defer s.gate.Leave()
	cid, err := sink.CanonicalID(id)
	if err != nil {
		return user.Record{}, fmt.Errorf("postgres sink: get %q (not a UUID): %w", id, sink.ErrNotFound)
	}
	r, err := scan(s.pool.QueryRow(ctx, `SELECT `+selectColumns+` FROM created_users WHERE id = $1::uuid`, cid))
	if errors.Is(err, pgx.ErrNoRows) {
		return user.Record{}, fmt.Errorf("postgres sink: get %s: %w", cid, sink.ErrNotFound)
	}
	if err != nil {
		return user.Record{}, fmt.Errorf("postgres sink: get %s: %w", cid, err)
	}
	return r, nil
}

// Close waits for calls in progress and closes the pool. Every later call,
// Close included, returns an error matching sink.ErrClosed.
func (s *Sink) Close() error {
	return s.gate.Close(func() error { s.pool.Close(); return nil })
}

func scan(row pgx.Row) (user.Record, error) {
	var r user.Record
	var at pgtype.Timestamptz
	if err := row.Scan(&r.ID, &r.FirstName, &r.LastName, &r.Gender, &r.Address, &r.PostCode, &r.Email,
		&r.Username, &r.DOB, &r.RegisteredDate, &r.Phone, &r.Picture, &r.Nat, &at, &r.RunID); err != nil {
		return user.Record{}, err
	}
	if at.Valid {
		r.IngestedAt = at.Time.UTC()
	}
	return r, nil
}
