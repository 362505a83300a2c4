package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Counting (migration 00002). user_counts holds the users by nat of every
// row whose rowid is at most user_counts_mark.counted, each under its
// counted_nat; rows above the mark are not counted yet, and counted rows
// whose nat is no longer their counted_nat (the partial index
// created_users_moved) are counted under the old one. Readers correct for
// both as they read (countSQL, statsSQL), so the counts are exact whoever
// wrote; Upsert settles both in its transaction.
const (
	mark      = `(SELECT counted FROM user_counts_mark)`
	uncounted = `FROM created_users WHERE rowid > ` + mark
	moved     = `FROM created_users INDEXED BY created_users_moved WHERE counted_nat IS NOT nat AND rowid <= ` + mark
	// A move changes no total: Count needs only the uncounted rows.
	countSQL = `SELECT (SELECT coalesce(sum(n), 0) FROM user_counts) + (SELECT count(*) ` + uncounted + `)`
	statsSQL = `SELECT nat, sum(n) FROM (SELECT nat, n FROM user_counts
	UNION ALL SELECT nat, count(*) ` + uncounted + ` GROUP BY nat
	UNION ALL SELECT nat, count(*) ` + moved + ` GROUP BY nat
	UNION ALL SELECT counted_nat, -count(*) ` + moved + ` GROUP BY counted_nat)
	GROUP BY nat HAVING sum(n) <> 0`

	countStartSQL = `SELECT counted, (SELECT coalesce(max(rowid), 0) FROM created_users) FROM user_counts_mark`
	countAboveSQL = `INSERT INTO user_counts (nat, n) SELECT nat, count(*) FROM created_users WHERE rowid > ?
	GROUP BY nat ON CONFLICT (nat) DO UPDATE SET n = n + excluded.n`
	settleAboveSQL = `UPDATE created_users SET counted_nat = nat WHERE rowid > ? AND counted_nat IS NOT nat`
	foldMovedSQL   = `INSERT INTO user_counts (nat, n) SELECT nat, sum(d) FROM
	(SELECT nat, 1 AS d ` + moved + ` UNION ALL SELECT counted_nat, -1 ` + moved + `)
	WHERE true GROUP BY nat ON CONFLICT (nat) DO UPDATE SET n = n + excluded.n`
	settleMovedSQL = `UPDATE created_users SET counted_nat = nat WHERE counted_nat IS NOT nat AND rowid <= ` + mark
	topSQL         = `SELECT coalesce(max(rowid), 0) FROM created_users`
	setMarkSQL     = `UPDATE user_counts_mark SET counted = ?`
)

// counter keeps the counts of one Upsert transaction, with no trigger (a
// row trigger would cost every upsert a second statement) and without
// tracking rows one by one: in the transaction, which holds SQLite's write
// lock, every new row gets the next rowid above the table's top, so the
// batch's new rows are exactly the rowids above the top it began with,
// counted by nat in one range read at the end. Updates keep their rowid;
// they are left to the partial index and folded once at the end.
type counter struct {
	tx      *sql.Tx
	stmts   map[string]*sql.Stmt // countWrites, prepared on the writer's database
	top     int64                // the table's highest rowid when the batch began
	changed int64                // rows the upserts inserted or updated
}

// countWrites are the statements Upsert's counting runs, prepared once at
// Open (preparing them in every batch cost the writer a few percent).
var countWrites = []string{countStartSQL, countAboveSQL, settleAboveSQL, foldMovedSQL, settleMovedSQL, topSQL, setMarkSQL}

func (c *counter) exec(ctx context.Context, query string, args ...any) error {
	_, err := c.tx.StmtContext(ctx, c.stmts[query]).ExecContext(ctx, args...)
	return err
}

func (c *counter) queryRow(ctx context.Context, query string) *sql.Row {
	return c.tx.StmtContext(ctx, c.stmts[query]).QueryRowContext(ctx)
}

// startCount begins counting in tx, first taking into the counts any rows
// another program inserted above the mark, so that every row the batch
// may update is counted. stmts holds countWrites prepared.
func startCount(ctx context.Context, tx *sql.Tx, stmts map[string]*sql.Stmt) (*counter, error) {
	c := &counter{tx: tx, stmts: stmts}
	var mark int64
	if err := c.queryRow(ctx, countStartSQL).Scan(&mark, &c.top); err != nil {
		return nil, fmt.Errorf("read the count mark: %w", err)
	}
	if c.top > mark {
		if err := c.exec(ctx, countAboveSQL, mark); err != nil {
			return nil, fmt.Errorf("count rows inserted past the sink: %w", err)
		}
		if err := c.exec(ctx, settleAboveSQL, mark); err != nil {
			return nil, fmt.Errorf("count rows inserted past the sink: %w", err)
		}
		if err := c.exec(ctx, setMarkSQL, c.top); err != nil {
			return nil, fmt.Errorf("move the count mark: %w", err)
		}
	}
	return c, nil
}

// wrote takes the result of one upsert statement.
func (c *counter) wrote(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("read the rows written: %w", err)
	}
	c.changed += n
	return nil
}

// finish adds the batch's new users to the counts and moves the mark
// above them, then folds the users whose nat moved (when the batch updated
// any, that is changed more rows than it inserted: otherwise a move made
// past the sink waits for a later batch, read through the index
// meanwhile).
func (c *counter) finish(ctx context.Context) error {
	var top int64
	if err := c.queryRow(ctx, topSQL).Scan(&top); err != nil {
		return fmt.Errorf("read the top rowid: %w", err)
	}
	if c.changed > top-c.top {
		if err := c.exec(ctx, foldMovedSQL); err != nil {
			return fmt.Errorf("count users whose nat changed: %w", err)
		}
		if err := c.exec(ctx, settleMovedSQL); err != nil {
			return fmt.Errorf("count users whose nat changed: %w", err)
		}
	}
	if top > c.top {
		// New rows have counted_nat = nat: they are counted under it.
		if err := c.exec(ctx, countAboveSQL, c.top); err != nil {
			return fmt.Errorf("count new users: %w", err)
		}
	}
	if top != c.top {
		if err := c.exec(ctx, setMarkSQL, top); err != nil {
			return fmt.Errorf("move the count mark: %w", err)
		}
	}
	return nil
}
