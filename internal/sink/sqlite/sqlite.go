// Package sqlite is the SQLite sink driver: users in table created_users of
// one SQLite file, written with modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=NORMAL and a busy timeout,
// so readers (userstream users, the web UI) never block the stream's writes.
// Upserts run on a connection of their own, kept open, and reads on a pool
// beside it. Each Upsert is one IMMEDIATE transaction of prepared multi-row
// INSERT ... ON CONFLICT(id) DO UPDATE statements: a batch is stored whole
// or not at all.
// The schema is created and upgraded by goose migrations embedded in the
// binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	sqlitedrv "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/userstream/userstream/internal/closeguard"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sqlitefile"
	"github.com/userstream/userstream/internal/user"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Memory is the path that opens a private in-memory database (sqlite::memory:),
// gone when the sink is closed. Meant for tests.
const Memory = sqlitefile.Memory

// pragmas are applied to every connection. busy_timeout first (the driver
// orders it so), so the others wait on a busy file (but not the switch of a
// new file to WAL: see Open); _txlock=immediate
// makes every transaction take the write lock at BEGIN, so two writers wait
// for each other instead of failing on a lock upgrade. The page cache's
// size is the pool's (writerCache, readerCache).
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(16384)&_txlock=immediate"

// The page cache of each connection, in KiB. The writer's was 16 MiB; 2,
// 4, 8, 16 and 32 MiB upserted 100,000 new users within a tenth of each
// other (4 MiB the fastest: the pages it misses come from the OS's cache),
// and a full cache is memory the process keeps. A reader reads a page of
// users or the counts, for which SQLite's default (about 2 MiB) is plenty.
const (
	writerCache = 4096
	readerCache = 2048
)

// timeLayout stores timestamps as UTC text with nine fraction digits, so the
// text order of the column is the time order (years 0000 to 9999).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

const columns = `id, first_name, last_name, gender, address, post_code, email, username, dob,
	registered_date, phone, picture, nat, ingested_at, run_id`

// upsertSQL returns the upsert of n rows in one statement; it sets
// counted_nat (migration 00002) on insert only. Rows are bound in chunks of
// powers of two up to maxChunk, each size prepared once: one statement a
// row costs the sink half its time in statement overhead
// (docs/benchmarks.md). The parameters are anonymous: with numbered ones
// (?NNN, to bind stored_at once a statement), modernc's driver looks up
// every parameter's name by a linear scan, which made the sink 4x slower.
func upsertSQL(n int) string {
	return `INSERT INTO created_users (` + columns + `, stored_at, counted_nat) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), `, `) + `
ON CONFLICT(id) DO UPDATE SET
	first_name = excluded.first_name, last_name = excluded.last_name, gender = excluded.gender,
	address = excluded.address, post_code = excluded.post_code, email = excluded.email,
	username = excluded.username, dob = excluded.dob, registered_date = excluded.registered_date,
	phone = excluded.phone, picture = excluded.picture, nat = excluded.nat,
	ingested_at = excluded.ingested_at, run_id = excluded.run_id, stored_at = excluded.stored_at`
}

// maxChunk is the most rows one upsert statement binds (17 values each,
// far under SQLite's 32,766 variables).
const maxChunk = 128

// upsertArgs is the number of values bound for each row.
const upsertArgs = 17

// appendUpsertArgs appends the upsertArgs values upsertSQL binds for one
// row: its stored id (appendID's 16 bytes), its columns, stored_at (now)
// and counted_nat.
func appendUpsertArgs(args []any, id any, r user.Record, now string) []any {
	return append(args, id, r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode,
		r.Email, r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat,
		formatTime(r.IngestedAt), r.RunID, now, r.Nat)
}

// Sink stores users in one SQLite database. It is safe for concurrent use;
// writes are serialised by SQLite's single writer lock.
type Sink struct {
	db   *sql.DB // readers (and the checkpointer); the writer itself for Memory
	wdb  *sql.DB // the writer: one connection, never closed while the sink is open
	path string

	stmts  map[int]*sql.Stmt    // upsert statements by rows (chunkSize), prepared at Open
	counts map[string]*sql.Stmt // countWrites, prepared at Open

	ckpt ckpt

	gate *closeguard.Gate
}

var _ sink.Sink = (*Sink)(nil)

// ParseURL returns the file path a sink URL names: sqlite:PATH, as
// sqlitefile.ParseURL reads it (sqlite:./data/users.db,
// sqlite:///abs/u.db, sqlite::memory:).
func ParseURL(rawURL string) (string, error) {
	return sqlitefile.ParseURL(rawURL, "sqlite sink", "./data/users.db")
}

// Open opens (creating it and its parent directory when missing) the SQLite
// database the URL names (see ParseURL) and migrates it to the newest schema.
// The context bounds only the opening and migration.
func Open(ctx context.Context, rawURL string) (*Sink, error) {
	path, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	// Opened and migrated one opener at a time (see sqlitefile.Lock): the
	// first connection switches a new file to WAL, and goose reads the
	// applied versions before it writes. Connect's tasks of one connector
	// open one file together on a worker's start.
	release, err := sqlitefile.Lock(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("sqlite sink: %w", err)
	}
	defer release()
	wdb, err := openDB(path, writerCache)
	if err != nil {
		return nil, err
	}
	// Upserts run on a pool of one connection that stays open: its page
	// cache stays warm and its statements stay prepared. In a shared pool
	// that keeps one idle connection, a reader (Count, the UI) returning
	// its connection while a batch is written left the writer's to be
	// closed, so nearly every batch began on a cold connection, re-preparing
	// its statements and re-reading its pages: a quarter of the sink's rate
	// with a reader polling (docs/decisions.md).
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite sink %s: migrate: %w", path, err)
	}
	s := &Sink{gate: closeguard.New("sqlite sink", sink.ErrClosed), wdb: wdb, path: path, stmts: map[int]*sql.Stmt{}, counts: map[string]*sql.Stmt{}}
	if err := s.prepare(ctx); err != nil {
		s.closeWriter()
		return nil, fmt.Errorf("sqlite sink %s: prepare: %w", path, err)
	}
	s.db = wdb // every connection to :memory: is a database of its own
	if path != Memory {
		if s.db, err = openDB(path, readerCache); err != nil {
			s.closeWriter()
			return nil, err
		}
	}
	return s, nil
}

// prepare prepares, on the writer's database, the upsert of every chunk
// size and the statements of the counts. It is done at Open: inside an
// Upsert, preparing on the database would wait for the connection the
// transaction holds.
func (s *Sink) prepare(ctx context.Context) error {
	for n := 1; n <= maxChunk; n <<= 1 {
		stmt, err := s.wdb.PrepareContext(ctx, upsertSQL(n))
		if err != nil {
			return err
		}
		s.stmts[n] = stmt
	}
	for _, q := range countWrites {
		stmt, err := s.wdb.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		s.counts[q] = stmt
	}
	return nil
}

// closeWriter closes the prepared statements and the writer's database.
func (s *Sink) closeWriter() error {
	for _, st := range s.stmts {
		st.Close()
	}
	for _, st := range s.counts {
		st.Close()
	}
	return s.wdb.Close()
}

// openDB opens the database file with the sink's pragmas and a page cache
// of cacheKiB a connection.
func openDB(path string, cacheKiB int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", fmt.Sprintf("%s?%s&_pragma=cache_size(-%d)", path, pragmas, cacheKiB))
	if err != nil {
		return nil, fmt.Errorf("sqlite sink %s: %w", path, err)
	}
	if path == Memory {
		// Every connection to :memory: is a database of its own: keep one.
		db.SetMaxOpenConns(1)
	}
	// Each connection has a page cache of its own: keep one idle
	// connection, so that readers (the UI, counts) do not leave a cache
	// each behind them. With database/sql's default of two and 16 MiB
	// caches, dev's RSS (scripts/footprint.sh, 5,000 users/s) climbed from
	// 101 to 139 MiB in 10 minutes; with one, 99 to ~115 MiB.
	db.SetMaxIdleConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite sink %s: open: %w", path, err)
	}
	return db, nil
}

// migrate brings the schema to the newest version; Open calls it under
// sqlitefile.Lock.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Path returns the database file's path (or ":memory:").
func (s *Sink) Path() string { return s.path }

// Upsert stores the batch in one transaction: every record replaces the row
// with its id, the last one winning when an id appears twice in the batch.
// An id that is not a UUID fails the whole batch (errors.Is(err,
// user.ErrInvalid)) before anything is written; any other failure rolls the
// transaction back, so a batch is stored whole or not at all. A value
// SQLite refuses (over a column's 512-byte check) fails the batch with an
// error matching sink.ErrRejected. Ids are stored as the UUID's 16 bytes
// (migration 00003) and read back in lower case.
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
		return fmt.Errorf("sqlite sink: upsert: %w", err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite sink: upsert: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// The counts follow in this transaction (counts.go).
	count, err := startCount(ctx, tx, s.counts)
	if err != nil {
		return fmt.Errorf("sqlite sink: upsert: %w", err)
	}
	now := time.Now().UTC().Format(timeLayout)
	args := make([]any, 0, upsertArgs*min(len(recs), maxChunk))
	for rest := recs; len(rest) > 0; {
		n := chunkSize(len(rest))
		stmt := tx.StmtContext(ctx, s.stmts[n])
		args = args[:0]
		ids := make([]byte, 0, 16*n) // one allocation for the chunk's keys
		for _, r := range rest[:n] {
			if ids, err = appendID(ids, r.ID); err != nil {
				return fmt.Errorf("sqlite sink: upsert: %w", err)
			}
			args = appendUpsertArgs(args, ids[len(ids)-16:], r, now)
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			if n == 1 {
				err = fmt.Errorf("sqlite sink: upsert user %s: %w", rest[0].ID, err)
			} else {
				// The stream splits a rejected batch down to the record.
				err = fmt.Errorf("sqlite sink: upsert of %d users from %s: %w", n, rest[0].ID, err)
			}
			if reason, ok := dataError(err); ok {
				return sink.Rejected(reason, err)
			}
			return err
		}
		if err := count.wrote(res); err != nil {
			return fmt.Errorf("sqlite sink: upsert: %w", err)
		}
		rest = rest[n:]
	}
	if err := count.finish(ctx); err != nil {
		return fmt.Errorf("sqlite sink: upsert: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite sink: upsert: commit: %w", err)
	}
	if s.path != Memory {
		s.ckpt.kick(s.db)
	}
	return nil
}

// chunkSize returns the rows of the next statement for n rows left: the
// largest power of two up to maxChunk, so that at most eight statement
// sizes are ever prepared.
func chunkSize(n int) int {
	c := maxChunk
	for c > n {
		c >>= 1
	}
	return c
}

// dataError reports whether err is SQLite refusing a value rather than
// failing as a database, with SQLite's reason: a CHECK constraint (the
// table's 512-byte limits) or a value over SQLite's size limit
// (SQLITE_TOOBIG). A locked, full or read-only database is not a data
// error: the batch is retried.
func dataError(err error) (string, bool) {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_TOOBIG:
		return "sqlite: " + se.Error(), true
	}
	return "", false
}

// Count returns the number of stored users, exactly: the per-nat counts
// of user_counts (see Stats), not a scan of the table.
func (s *Sink) Count(ctx context.Context) (int64, error) {
	if err := s.gate.Enter("count"); err != nil {
		return 0, err
	}
	defer s.gate.Leave()
	var n int64
	if err := s.db.QueryRowContext(ctx, countSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite sink: count: %w", err)
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
		return nil, fmt.Errorf("sqlite sink: recent: n is %d, want 0 or more", n)
	}
	if n == 0 {
		return []user.Record{}, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM created_users
		INDEXED BY `+pageIndex+` ORDER BY ingested_at DESC, id LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite sink: recent: %w", err)
	}
	defer rows.Close()
	out := make([]user.Record, 0, min(n, 1024))
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite sink: recent: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite sink: recent: %w", err)
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
		return user.Record{}, fmt.Errorf("sqlite sink: get %q (not a UUID): %w", id, sink.ErrNotFound)
	}
	key, err := appendID(nil, cid)
	if err != nil {
		return user.Record{}, fmt.Errorf("sqlite sink: get: %w", err)
	}
	r, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM created_users WHERE id = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return user.Record{}, fmt.Errorf("sqlite sink: get %s: %w", cid, sink.ErrNotFound)
	}
	if err != nil {
		return user.Record{}, fmt.Errorf("sqlite sink: get %s: %w", cid, err)
	}
	return r, nil
}

// Close waits for calls in progress and closes the database. Every later
// call, Close included, returns an error matching sink.ErrClosed.
func (s *Sink) Close() error {
	return s.gate.Close(func() error {
		s.ckpt.stop()
		err := s.closeWriter()
		if s.db != s.wdb {
			err = errors.Join(err, s.db.Close())
		}
		return err
	})
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (user.Record, error) {
	var r user.Record
	var ingested sql.NullString
	if err := row.Scan(storedID{&r.ID}, &r.FirstName, &r.LastName, &r.Gender, &r.Address, &r.PostCode, &r.Email,
		&r.Username, &r.DOB, &r.RegisteredDate, &r.Phone, &r.Picture, &r.Nat, &ingested, &r.RunID); err != nil {
		return user.Record{}, err
	}
	if ingested.Valid {
		t, err := time.Parse(timeLayout, ingested.String)
		if err != nil {
			return user.Record{}, fmt.Errorf("user %s: ingested_at %q: %w", r.ID, ingested.String, err)
		}
		r.IngestedAt = t.UTC()
	}
	return r, nil
}

// storedID scans a stored id (16 bytes, migration 00003) into the
// canonical text form.
type storedID struct{ id *string }

func (d storedID) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok || len(b) != 16 {
		return fmt.Errorf("stored id %v (%T): not a UUID's 16 bytes", src, src)
	}
	*d.id = uuid.UUID(b).String()
	return nil
}

// appendID appends the stored form of an id: the UUID's 16 bytes
// (migration 00003). Every caller has the id in canonical form (from
// sink.Dedup, sink.CanonicalID or a checked cursor), so an error here is a
// bug upstream, reported rather than stored as some other key.
func appendID(b []byte, id string) ([]byte, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return b, fmt.Errorf("id %q: %w", id, err)
	}
	return append(b, u[:]...), nil
}

// formatTime gives the stored form of t: NULL for the zero time (records in
// the original's shape carry none), UTC text otherwise.
func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}
