package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	sqlitedrv "modernc.org/sqlite"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// SQLite's lower() folds ASCII letters only; Search and Nat fold as
// sink.Fold does (Unicode), so the driver registers two SQL functions of
// its own (for every connection of the process, which is harmless):
//
//	userstream_fold(s)                 sink.Fold(s)
//	userstream_contains(q, a, b, c)    1 if the folded q is in the folded a, b or c
func init() {
	sqlitedrv.MustRegisterDeterministicScalarFunction("userstream_fold", 1,
		func(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
			return sink.Fold(text(args[0])), nil
		})
	sqlitedrv.MustRegisterDeterministicScalarFunction("userstream_contains", 4,
		func(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
			q := text(args[0]) // folded by the caller once, not once a row
			for _, a := range args[1:] {
				if strings.Contains(sink.Fold(text(a)), q) {
					return int64(1), nil
				}
			}
			return int64(0), nil
		})
}

func text(v driver.Value) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// pageIndex is the index Page and Recent walk (migration 00002), named in
// the SQL so the plan cannot drift to a scan and a sort; runIndex is the
// one a page of one run walks (migration 00004), the same order after
// run_id.
const (
	pageIndex = "created_users_page"
	runIndex  = "created_users_run"
)

// pageSQL returns Page's statement and its arguments. Without a cursor it
// is one index walk from the head. After a cursor (x, y) the rest of the
// order is three ranges of the index, each read from its start: the ties
// (ingested_at = x AND id > y), the older users (ingested_at < x), and the
// users without ingested_at; after a cursor without ingested_at, the rest
// of those. Each range stops at limit rows, and the outer sort orders at
// most 3*limit rows: a page costs the same at any depth.
func pageSQL(q sink.PageQuery, c *sink.Cursor, limit int) (string, []any, error) {
	var filter string
	var fargs []any
	if q.Search != "" {
		filter += ` AND userstream_contains(?, first_name, last_name, email)`
		fargs = append(fargs, sink.Fold(q.Search))
	}
	if q.Nat != "" {
		filter += ` AND userstream_fold(nat) = ?`
		fargs = append(fargs, sink.Fold(q.Nat))
	}
	index := pageIndex
	if q.Run != "" {
		filter += ` AND run_id = ?`
		fargs = append(fargs, q.Run)
		index = runIndex
	}
	from := `SELECT ` + columns + ` FROM created_users INDEXED BY ` + index + ` WHERE `
	order := ` ORDER BY ingested_at DESC, id LIMIT ?`
	var args []any
	branch := func(cond string, cargs ...any) string {
		args = append(args, cargs...)
		args = append(args, fargs...)
		args = append(args, limit)
		return from + cond + filter + order
	}
	if c == nil {
		return branch(`1`), args, nil
	}
	id, err := appendID(nil, c.ID)
	if err != nil {
		return "", nil, fmt.Errorf("cursor: %w", err)
	}
	if c.IngestedAt.IsZero() {
		return branch(`ingested_at IS NULL AND id > ?`, id), args, nil
	}
	x := formatTime(c.IngestedAt)
	query := `SELECT * FROM (` + branch(`ingested_at = ? AND id > ?`, x, id) + `)
	UNION ALL SELECT * FROM (` + branch(`ingested_at < ?`, x) + `)
	UNION ALL SELECT * FROM (` + branch(`ingested_at IS NULL`) + `)` + order
	return query, append(args, limit), nil
}

// Page returns a page of users (see sink.Browser): newest ingested first,
// ties by id, users without ingested_at last, by keyset over the index
// created_users_page. Without filters a page reads limit+1 index entries
// and rows wherever it starts. Search and Nat are applied to the rows as
// the index is walked, so a filter that few users match reads further
// (all of the table, for none) before the page fills. Run walks
// created_users_run instead, which holds the run's users only.
func (s *Sink) Page(ctx context.Context, q sink.PageQuery) (sink.Page, error) {
	if err := s.gate.Enter("page"); err != nil {
		return sink.Page{}, err
	}
	defer s.gate.Leave()
	c, err := q.Check()
	if err != nil {
		return sink.Page{}, fmt.Errorf("sqlite sink: page: %w", err)
	}
	query, args, err := pageSQL(q, c, q.Limit+1)
	if err != nil {
		return sink.Page{}, fmt.Errorf("sqlite sink: page: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return sink.Page{}, fmt.Errorf("sqlite sink: page: %w", err)
	}
	defer rows.Close()
	out := make([]user.Record, 0, min(q.Limit+1, 64))
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return sink.Page{}, fmt.Errorf("sqlite sink: page: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return sink.Page{}, fmt.Errorf("sqlite sink: page: %w", err)
	}
	return sink.PageOf(out, q.Limit), nil
}

// Stats returns the counts kept in user_counts (migration 00002), plus the
// rows inserted since the last count: a read of one small table and of
// the few newest rows, whatever the number of users.
func (s *Sink) Stats(ctx context.Context) (sink.Stats, error) {
	if err := s.gate.Enter("stats"); err != nil {
		return sink.Stats{}, err
	}
	defer s.gate.Leave()
	rows, err := s.db.QueryContext(ctx, statsSQL)
	if err != nil {
		return sink.Stats{}, fmt.Errorf("sqlite sink: stats: %w", err)
	}
	defer rows.Close()
	st := sink.Stats{ByNat: map[string]int64{}}
	for rows.Next() {
		var nat string
		var n int64
		if err := rows.Scan(&nat, &n); err != nil {
			return sink.Stats{}, fmt.Errorf("sqlite sink: stats: %w", err)
		}
		st.ByNat[nat] = n
		st.Total += n
	}
	if err := rows.Err(); err != nil {
		return sink.Stats{}, fmt.Errorf("sqlite sink: stats: %w", err)
	}
	return st, nil
}
