package sqlite

import (
	"database/sql"
	"io/fs"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/user"
)

// plan returns SQLite's EXPLAIN QUERY PLAN lines for a statement.
func plan(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestPagePlanUsesIndex checks the plan of every form of Page's statement
// (first page, after a cursor with and without ingested_at, with and
// without filters): created_users is only ever read through the index
// created_users_page (created_users_run for a run's page), each range from its start (SEARCH on the cursor's
// key), and nothing sorts the table: the only sorts are of a range's
// limit+1 rows, after it is read. So a page costs the same at any depth
// (BenchmarkPage shows it on a million rows).
func TestPagePlanUsesIndex(t *testing.T) {
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Upsert(t.Context(), sinktest.Records(0, 200)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	id := sinktest.Record(1).ID
	cursors := map[string]*sink.Cursor{
		"first page":            nil,
		"after a user":          {IngestedAt: time.Now(), ID: id},
		"after a user, no time": {ID: id},
	}
	for name, c := range cursors {
		for _, q := range []sink.PageQuery{{Limit: 50}, {Limit: 50, Search: "Ab", Nat: "us"}, {Limit: 50, Run: "manual__x"}} {
			index := "created_users_page"
			if q.Run != "" {
				index = "created_users_run" // the run's users only
			}
			query, args, err := pageSQL(q, c, q.Limit+1)
			if err != nil {
				t.Fatal(err)
			}
			lines := plan(t, s.db, query, args...)
			all := strings.Join(lines, "\n")
			reads := 0
			for i, l := range lines {
				if strings.Contains(l, "created_users") {
					reads++
					if !strings.Contains(l, "USING INDEX "+index) {
						t.Errorf("%s, %+v: reads created_users without the index %s:\n%s", name, q, index, all)
					}
					if c != nil && !strings.HasPrefix(l, "SEARCH") {
						t.Errorf("%s, %+v: scans instead of seeking the cursor:\n%s", name, q, all)
					}
				}
				if strings.Contains(l, "TEMP B-TREE") && (i == 0 || !strings.HasPrefix(lines[i-1], "SCAN (subquery")) {
					t.Errorf("%s, %+v: sorts rows other than a range's page:\n%s", name, q, all)
				}
			}
			if reads == 0 {
				t.Errorf("%s, %+v: no read of created_users in the plan:\n%s", name, q, all)
			}
		}
	}
}

// TestMigrationBackfillsCounts writes users into a file at schema version
// 1 (before the counts existed), as an older binary left it, then opens it
// with this one: the migration must count them, and the counts stay exact
// from there, through Upsert and through writes past the sink (inserts,
// nat changes, deletes, a reused rowid).
func TestMigrationBackfillsCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	db, err := openDB(path, writerCache)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `SELECT 1 FROM user_counts`); err == nil {
		t.Fatal("user_counts exists at version 1: the test would not test the backfill")
	}
	old := sinktest.Records(0, 30)
	for i := range old {
		old[i].Nat = []string{"US", "FR", ""}[i%3]
	}
	for _, r := range old {
		rawInsert(t, db, r, "?") // text ids, as version 1 stored them
	}
	db.Close()

	s, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]int64{"US": 10, "FR": 10, "": 10}
	check := func(what string) {
		t.Helper()
		st, err := s.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(st.ByNat, want) || st.Total != n {
			t.Fatalf("%s: Stats = %+v, Count = %d; want ByNat %v", what, st, n, want)
		}
	}
	check("after the migration")
	// Migration 00003 turned the text ids into blobs: every row is found
	// by its id, whole, and the view shows the text again.
	for _, r := range old {
		got, err := s.Get(t.Context(), r.ID)
		if err != nil || got != r {
			t.Fatalf("Get(%s) after the migration = %+v, %v; want %+v", r.ID, got, err, r)
		}
	}
	var viewID string
	if err := s.db.QueryRowContext(t.Context(), `SELECT id FROM users WHERE id = ?`, old[3].ID).Scan(&viewID); err != nil || viewID != old[3].ID {
		t.Fatalf("view users: id %q, %v; want %q", viewID, err, old[3].ID)
	}
	// From here the triggers count: a move, a new user, and a user
	// deleted by hand.
	moved := old[0] // US
	moved.Nat = "FR"
	if err := s.Upsert(t.Context(), append(old[1:5], moved, sinktest.Record(99))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), `DELETE FROM created_users WHERE id = `+foreignID, old[2].ID); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{"US": 10, "FR": 11, "": 9} // +1 US (Record 99), -1 US moved, -1 "" deleted
	check("after writes on the migrated file")

	// A counted row's nat changed by another program counts at once, and
	// still after the next Upsert folds it in.
	if _, err := s.db.ExecContext(t.Context(), `UPDATE created_users SET nat = 'JP' WHERE id = `+foreignID, old[4].ID); err != nil {
		t.Fatal(err)
	}
	want["JP"] = 1
	want[old[4].Nat]--
	check("after a foreign update of a counted row")
	if err := s.Upsert(t.Context(), old[5:7]); err != nil { // replays: updates, no move
		t.Fatal(err)
	}
	check("after the Upsert that folds the move in")
	var nMoved int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM created_users WHERE counted_nat IS NOT nat`).Scan(&nMoved); err != nil || nMoved != 0 {
		t.Fatalf("%d rows still moved after an Upsert (%v), want 0", nMoved, err)
	}

	// Rows another program inserts (not through Upsert) are counted as
	// soon as they are there, and the next Upsert takes them in.
	foreign := sinktest.Record(200)
	foreign.Nat = "NZ"
	rawInsert(t, s.db, foreign, foreignID)
	want["NZ"] = 1
	check("after a foreign insert")
	// Their nat changing before any Upsert counted them.
	if _, err := s.db.ExecContext(t.Context(), `UPDATE created_users SET nat = 'IE' WHERE id = `+foreignID, foreign.ID); err != nil {
		t.Fatal(err)
	}
	delete(want, "NZ")
	want["IE"] = 1
	check("after a foreign update of an uncounted row")
	if err := s.Upsert(t.Context(), []user.Record{sinktest.Record(201)}); err != nil {
		t.Fatal(err)
	}
	want["US"]++
	check("after the next Upsert")
	// The top row deleted: SQLite gives its rowid again, which must not
	// pass for counted.
	top := sinktest.Record(201)
	if _, err := s.db.ExecContext(t.Context(), `DELETE FROM created_users WHERE id = `+foreignID, top.ID); err != nil {
		t.Fatal(err)
	}
	want["US"]--
	check("after deleting the top row")
	again := sinktest.Record(202)
	again.Nat = "GB"
	rawInsert(t, s.db, again, foreignID)
	want["GB"] = 1
	check("after a foreign insert that reuses the top rowid")
	moved = again
	moved.Nat = "US"
	if err := s.Upsert(t.Context(), []user.Record{moved, sinktest.Record(203)}); err != nil {
		t.Fatal(err)
	}
	delete(want, "GB")
	want["US"] += 2
	check("after an Upsert that moves it")
	if _, err := s.db.ExecContext(t.Context(), `DELETE FROM created_users`); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{}
	check("after deleting every row")
	if err := s.Upsert(t.Context(), sinktest.Records(0, 3)); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{"US": 3}
	check("after an Upsert into the emptied table")
}

// foreignID is how another program names an id in SQL since migration
// 00003: the UUID's text made into its 16 bytes.
const foreignID = "unhex(replace(?, '-', ''))"

// rawInsert writes r into created_users as another program would, with
// the id bound through idExpr ("?" before migration 00003, foreignID
// after), past
// the sink.
func rawInsert(t *testing.T, db *sql.DB, r user.Record, idExpr string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), `INSERT INTO created_users (`+columns+`, stored_at)
		VALUES (`+idExpr+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode, r.Email, r.Username, r.DOB,
		r.RegisteredDate, r.Phone, r.Picture, r.Nat, formatTime(r.IngestedAt), r.RunID, "2026-01-01T00:00:00.000000000Z"); err != nil {
		t.Fatal(err)
	}
}
