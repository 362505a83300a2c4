package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/userstream/userstream/internal/sink"
)

// ExplainPage returns PostgreSQL's plan of the statement Page runs for q
// after c, with Page's planner settings.
func (s *Sink) ExplainPage(ctx context.Context, q sink.PageQuery, c *sink.Cursor) ([]string, error) {
	query, args := pageSQL(q, c, q.Limit+1)
	var lines []string
	err := s.pageQuery(ctx, q, func(db querier) error {
		rows, err := db.Query(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return lines, err
}

// Compact runs the compaction of user_counts now.
func (s *Sink) Compact(ctx context.Context) error { return s.compact(ctx) }

// Pool is the sink's pool.
func (s *Sink) Pool() *pgxpool.Pool { return s.pool }

// MigrateTo applies the embedded migrations up to version, as an older
// binary would have left the schema (the pool's search_path names it).
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int64) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

// bulkBase is the ingested_at of bulk row 0; row i is i ms later.
var bulkBase = time.Unix(1_700_000_000, 0).UTC()

func bulkID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i) }

// BulkFill writes n users into the sink's table with one INSERT ... SELECT
// FROM generate_series (row i: id bulkID(i), ingested_at bulkBase + i ms,
// nat one of 20, FR for a twentieth; the triggers count them), compacts the
// counts and analyses the table.
func BulkFill(ctx context.Context, s *Sink, n int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO created_users (`+columns+`)
	SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'First' || i, 'Last' || i, 'female',
		i || ' Main Street', lpad((i % 100000)::text, 5, '0'), 'first' || i || '@example.com', 'user' || i,
		'1980-05-17T04:12:31.123Z', '2012-01-02T03:04:05.678Z', '(555) 010-0000',
		'https://randomuser.me/api/portraits/med/women/1.jpg',
		substr('USFRDEGBESITNLBRCAAUNZIEINTRMXCHDKNOFIIR', (i % 20) * 2 + 1, 2),
		$2::timestamptz + i * interval '1 millisecond', 'run-bulk'
	FROM generate_series(0, $1::int - 1) AS i`, n, bulkBase)
	if err != nil {
		return fmt.Errorf("bulk fill: %w", err)
	}
	if err := s.compact(ctx); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `VACUUM ANALYZE created_users`)
	return err
}

// BulkCursor is the cursor after the user at position pos (0 = newest)
// of a table BulkFill filled with n users.
func BulkCursor(n, pos int) string {
	i := n - 1 - pos
	return sink.Cursor{IngestedAt: bulkBase.Add(time.Duration(i) * time.Millisecond), ID: bulkID(i)}.String()
}
