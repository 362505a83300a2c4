package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// pageOrder is the order of the index created_users_page (migration
// 00002). The id is qualified: a bare id would name the output column,
// id::text, and a sort by text uses no index.
const pageOrder = ` ORDER BY ingested_at DESC NULLS LAST, created_users.id`

// pageSQL returns Page's statement and its arguments. Without a cursor it
// is one walk of created_users_page from the head. After a cursor (x, y)
// the rest of the order is three ranges of the index, each read from its
// start: the ties (ingested_at = x AND id > y), the older users
// (ingested_at < x), the users without ingested_at; after a cursor without
// ingested_at, the rest of those. Each range stops at limit rows, and the
// outer sort orders at most 3*limit rows: a page costs the same at any
// depth. (A row comparison (ingested_at, id) < (x, y) would be one range,
// but the order mixes DESC and ASC, which a row comparison cannot say; an
// OR of the two conditions makes the planner scan from the head.)
func pageSQL(q sink.PageQuery, c *sink.Cursor, limit int) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var filter strings.Builder
	if q.Search != "" {
		p := arg(q.Search)
		fmt.Fprintf(&filter, ` AND (strpos(lower(first_name), lower(%[1]s)) > 0
		OR strpos(lower(last_name), lower(%[1]s)) > 0 OR strpos(lower(email), lower(%[1]s)) > 0)`, p)
	}
	if q.Nat != "" {
		fmt.Fprintf(&filter, ` AND lower(nat) = lower(%s)`, arg(q.Nat))
	}
	if q.Run != "" {
		// created_users_run (migration 00003): the run's users in this order.
		fmt.Fprintf(&filter, ` AND run_id = %s`, arg(q.Run))
	}
	lim := ` LIMIT ` + arg(limit)
	from := `SELECT ` + selectColumns + ` FROM created_users WHERE `
	branch := func(cond string) string { return from + cond + filter.String() + pageOrder + lim }
	switch {
	case c == nil:
		return branch(`true`), args
	case c.IngestedAt.IsZero():
		return branch(`ingested_at IS NULL AND id > ` + arg(c.ID) + `::uuid`), args
	}
	x, y := arg(c.IngestedAt), arg(c.ID)
	return `SELECT * FROM ((` + branch(`ingested_at = `+x+`::timestamptz AND id > `+y+`::uuid`) + `)
	UNION ALL (` + branch(`ingested_at < `+x+`::timestamptz`) + `)
	UNION ALL (` + branch(`ingested_at IS NULL`) + `)) page
	ORDER BY page.ingested_at DESC NULLS LAST, page.id::uuid` + lim, args
}

// Page returns a page of users (see sink.Browser): newest ingested first,
// ties by id, users without ingested_at last, by keyset over the index
// created_users_page. Without filters a page reads limit+1 index entries
// and rows wherever it starts. Search and Nat filter the rows as the index
// is walked, so a filter that few users match reads further (the whole
// table, for none) before the page fills. Search compares with PostgreSQL's
// lower(), which folds the letters of the database's ctype: all of
// Unicode in a UTF-8 locale, ASCII only under the C locale. Run walks
// created_users_run, which holds the run's users only.
func (s *Sink) Page(ctx context.Context, q sink.PageQuery) (sink.Page, error) {
	if err := s.gate.Enter("page"); err != nil {
		return sink.Page{}, err
	}
	defer s.gate.Leave()
	c, err := q.Check()
	if err != nil {
		return sink.Page{}, fmt.Errorf("postgres sink: page: %w", err)
	}
	query, args := pageSQL(q, c, q.Limit+1)
	var out []user.Record
	err = s.pageQuery(ctx, q, func(db querier) error {
		rows, err := db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (user.Record, error) { return scan(row) })
		return err
	})
	if err != nil {
		return sink.Page{}, fmt.Errorf("postgres sink: page: %w", err)
	}
	return sink.PageOf(out, q.Limit), nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// pageQuery runs f on the pool, or, for a query with filters, in a
// read-only transaction that tells the planner to walk the index: it
// cannot estimate how many rows a substring or a lower(nat) matches (it
// guesses few), and for few it would read the whole table and sort it,
// which costs the whole table for every page, where the walk stops as soon
// as the page is full. (The walk costs the whole table only when almost
// nothing matches.) JIT is off too: the disabled plans' huge costs would
// make PostgreSQL compile the query, which takes longer than running it.
func (s *Sink) pageQuery(ctx context.Context, q sink.PageQuery, f func(querier) error) error {
	if q.Search == "" && q.Nat == "" {
		return f(s.pool)
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
			SET LOCAL enable_sort = off; SET LOCAL jit = off`); err != nil {
			return err
		}
		return f(tx)
	})
}

// Stats sums the rows of user_counts, which the triggers of migration
// 00002 keep and compact keeps few: no scan of created_users.
func (s *Sink) Stats(ctx context.Context) (sink.Stats, error) {
	if err := s.gate.Enter("stats"); err != nil {
		return sink.Stats{}, err
	}
	defer s.gate.Leave()
	rows, err := s.pool.Query(ctx, `SELECT nat, sum(n)::bigint FROM user_counts GROUP BY nat HAVING sum(n) <> 0`)
	if err != nil {
		return sink.Stats{}, fmt.Errorf("postgres sink: stats: %w", err)
	}
	defer rows.Close()
	st := sink.Stats{ByNat: map[string]int64{}}
	for rows.Next() {
		var nat string
		var n int64
		if err := rows.Scan(&nat, &n); err != nil {
			return sink.Stats{}, fmt.Errorf("postgres sink: stats: %w", err)
		}
		st.ByNat[nat] = n
		st.Total += n
	}
	if err := rows.Err(); err != nil {
		return sink.Stats{}, fmt.Errorf("postgres sink: stats: %w", err)
	}
	return st, nil
}

// compactEvery is how many Upserts of one sink pass between compactions
// of user_counts: each upsert statement adds at most a row a nat it
// changed, so the table stays at a few thousand rows between them.
const compactEvery = 100

// compactSQL replaces the rows of user_counts it sees with one row a nat.
// Concurrent writers only insert, and rows committed after the statement
// began are not in its snapshot, so they stay, uncounted by it and not
// lost; a concurrent compaction waits for this one's row locks, then skips
// the rows it deleted.
const compactSQL = `WITH gone AS (DELETE FROM user_counts RETURNING nat, n)
INSERT INTO user_counts (nat, n) SELECT nat, sum(n) FROM gone GROUP BY nat HAVING sum(n) <> 0`

// compact folds user_counts into one row a nat.
func (s *Sink) compact(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, compactSQL); err != nil {
		return fmt.Errorf("postgres sink: compact user_counts: %w", err)
	}
	return nil
}
