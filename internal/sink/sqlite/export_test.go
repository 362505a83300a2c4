package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// bulkBase is the ingested_at of bulk row 0; row i is i ms later.
var bulkBase = time.Unix(1_700_000_000, 0).UTC()

// bulkID is the id of bulk row i.
func bulkID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i) }

// BulkFill writes n users into the sink's table with one INSERT ... SELECT
// from a recursive CTE (row i: id bulkID(i), ingested_at bulkBase + i ms,
// nat one of 20, FR for a twentieth), then upserts row 0 again unchanged
// so the counts take the rows in.
func BulkFill(ctx context.Context, s *Sink, n int) error {
	_, err := s.wdb.ExecContext(ctx, `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?)
	INSERT INTO created_users (`+columns+`, stored_at, counted_nat)
	SELECT unhex(printf('00000000000040008000%012x', i)), 'First' || i, 'Last' || i, 'female', i || ' Main Street',
		printf('%05d', i % 100000), 'first' || i || '@example.com', 'user' || i, '1980-05-17T04:12:31.123Z',
		'2012-01-02T03:04:05.678Z', '(555) 010-0000', 'https://randomuser.me/api/portraits/med/women/1.jpg',
		substr('USFRDEGBESITNLBRCAAUNZIEINTRMXCHDKNOFIIR', (i % 20) * 2 + 1, 2),
		strftime('%Y-%m-%dT%H:%M:%S', ? + i / 1000, 'unixepoch') || printf('.%03d000000Z', i % 1000),
		'run-bulk', '2026-01-01T00:00:00.000000000Z',
		substr('USFRDEGBESITNLBRCAAUNZIEINTRMXCHDKNOFIIR', (i % 20) * 2 + 1, 2)
	FROM seq`, n, bulkBase.Unix())
	if err != nil {
		return fmt.Errorf("bulk fill: %w", err)
	}
	r0, err := s.Get(ctx, bulkID(0))
	if err != nil {
		return fmt.Errorf("bulk fill: %w", err)
	}
	if err := s.Upsert(ctx, []user.Record{r0}); err != nil {
		return fmt.Errorf("bulk fill: %w", err)
	}
	_, err = s.wdb.ExecContext(ctx, `ANALYZE`)
	return err
}

// BulkCursor is the cursor after the user at position pos (0 = newest)
// of a table BulkFill filled with n users.
func BulkCursor(n, pos int) string {
	i := n - 1 - pos
	return sink.Cursor{IngestedAt: bulkBase.Add(time.Duration(i) * time.Millisecond), ID: bulkID(i)}.String()
}
