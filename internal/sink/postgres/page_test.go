package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sinktest"
)

// schemaPool connects to the schema a fresh URL names.
func schemaPool(t *testing.T, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestPagePlanUsesIndex checks the plan of every form of Page's statement
// on 20,000 analysed rows: created_users is read only through index scans
// of created_users_page, each range starting at the cursor (an Index Cond
// on it), never a sequential scan or a sort of the table. The only sort is
// of the ranges' limit+1 rows each. So a page costs the same at any depth
// (BenchmarkPage shows it on a million rows).
func TestPagePlanUsesIndex(t *testing.T) {
	u, _ := fresh(t, nil)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 20000; i += 5000 {
		if err := s.Upsert(t.Context(), sinktest.Records(i, 5000)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(t.Context(), `ANALYZE created_users`); err != nil {
		t.Fatal(err)
	}
	mid := sinktest.Record(10000)
	cursors := map[string]*sink.Cursor{
		"first page":            nil,
		"after a user":          {IngestedAt: mid.IngestedAt.Truncate(time.Microsecond), ID: mid.ID},
		"after a user, no time": {ID: mid.ID},
	}
	for name, c := range cursors {
		for _, q := range []sink.PageQuery{{Limit: 50}, {Limit: 50, Search: "ab", Nat: "us"}, {Limit: 50, Run: "manual__x"}} {
			index := "created_users_page"
			if q.Run != "" {
				index = "created_users_run" // the run's users only
			}
			lines, err := s.ExplainPage(t.Context(), q, c)
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Bitmap") {
				t.Errorf("%s, %+v: the plan scans the table:\n%s", name, q, plan)
			}
			if n := strings.Count(plan, "Index Scan using "+index); n == 0 ||
				n != strings.Count(plan, " on created_users") {
				t.Errorf("%s, %+v: not every read of created_users is an index scan of %s:\n%s", name, q, index, plan)
			}
			if c != nil && strings.Count(plan, "Index Cond") != strings.Count(plan, "Index Scan") {
				t.Errorf("%s, %+v: an index scan does not start at the cursor:\n%s", name, q, plan)
			}
			// A sort may order ranges already read (under a Limit), never
			// a scan of the table itself.
			for i, l := range lines {
				if !strings.Contains(l, "Sort  (") {
					continue
				}
				for _, below := range lines[i+1:] {
					if strings.Contains(below, "->") {
						if strings.Contains(below, "Scan") && strings.Contains(below, " on created_users") {
							t.Errorf("%s, %+v: a sort of a table scan:\n%s", name, q, plan)
						}
						break
					}
				}
			}
			if strings.Contains(plan, "JIT") {
				t.Errorf("%s, %+v: the plan is JIT-compiled:\n%s", name, q, plan)
			}
		}
	}
}

// TestMigrationBackfillsCounts writes users into a schema at version 1
// (before the counts existed), as an older binary left it, then opens it
// with this one: the migration must count them, and the triggers go on
// from there, also for writes past the sink (psql with another
// search_path, DELETE, TRUNCATE).
func TestMigrationBackfillsCounts(t *testing.T) {
	u, schema := fresh(t, nil)
	pool := schemaPool(t, schema)
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := postgres.MigrateTo(t.Context(), pool, 1); err != nil {
		t.Fatal(err)
	}
	old := sinktest.Records(0, 30)
	for i := range old {
		old[i].Nat = []string{"US", "FR", ""}[i%3]
		if _, err := pool.Exec(t.Context(), `INSERT INTO created_users (id, first_name, last_name, gender, address,
			post_code, email, username, dob, registered_date, phone, picture, nat, ingested_at, run_id)
			VALUES ($1, '', '', '', '', '', '', '', '', '', '', '', $2, now(), '')`, old[i].ID, old[i].Nat); err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(t.Context(), u)
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
		var real int64
		if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM created_users`).Scan(&real); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(st.ByNat, want) || st.Total != n || n != real {
			t.Fatalf("%s: Stats = %+v, Count = %d, rows %d; want ByNat %v", what, st, n, real, want)
		}
	}
	check("after the migration")

	moved := old[0] // US
	moved.Nat = "FR"
	if err := s.Upsert(t.Context(), append(old[1:5], moved, sinktest.Record(99))); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{"US": 10, "FR": 11, "": 10}
	check("after an upsert that moves one and adds one")

	// Another client, on the default search_path, names the table by
	// schema: the triggers still count into this schema's user_counts.
	admin := adminPool(t)
	defer admin.Close()
	tbl := pgx.Identifier{schema, "created_users"}.Sanitize()
	for _, q := range []string{
		`UPDATE ` + tbl + ` SET nat = 'JP' WHERE id = '` + old[1].ID + `'`, // FR -> JP
		`DELETE FROM ` + tbl + ` WHERE id = '` + old[2].ID + `'`,           // "" gone
		`INSERT INTO ` + tbl + ` (id, first_name, last_name, gender, address, post_code, email, username, dob,
			registered_date, phone, picture, nat) SELECT id, first_name, last_name, gender, address, post_code,
			email, username, dob, registered_date, phone, picture, 'NZ' FROM ` + tbl + ` WHERE id = '` + old[3].ID + `'
			ON CONFLICT (id) DO NOTHING`, // a no-op: the id exists
	} {
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want = map[string]int64{"US": 10, "FR": 10, "JP": 1, "": 9}
	check("after writes past the sink")
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after compaction")
	if _, err := admin.Exec(t.Context(), `TRUNCATE `+tbl); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{}
	check("after TRUNCATE")
}

// TestCompactionUnderWrites compacts user_counts over and over while two
// writers insert and move users: the counts must come out exact, and the
// count rows few once compacted.
func TestCompactionUnderWrites(t *testing.T) {
	u, _ := fresh(t, url.Values{"pool_max_conns": {"6"}})
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var compactions int
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := s.Compact(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("Compact: %v", err)
				return
			}
			compactions++
		}
	})
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for round := range 60 {
				batch := sinktest.Records(w*50+round%3*10, 100)
				for i := range batch {
					batch[i].Nat = []string{"US", "FR", "DE", "", "GB"}[(i+round+w)%5]
				}
				if err := s.Upsert(t.Context(), batch); err != nil {
					t.Errorf("Upsert: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	cancel()
	wg.Wait()
	if t.Failed() {
		return
	}
	rows, err := s.Pool().Query(t.Context(), `SELECT nat, count(*) FROM created_users GROUP BY nat`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for rows.Next() {
		var nat string
		var n int64
		if err := rows.Scan(&nat, &n); err != nil {
			t.Fatal(err)
		}
		want[nat] = n
	}
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(st.ByNat, want) {
		t.Fatalf("after %d compactions under writes: Stats.ByNat = %v, GROUP BY says %v", compactions, st.ByNat, want)
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM user_counts`).Scan(&n); err != nil || n > len(want) {
		t.Fatalf("user_counts has %d rows after a compaction (%v), want at most %d", n, err, len(want))
	}
	t.Logf("%d compactions during 120 upserts", compactions)
}

// TestReadOnlyOpenWaitsForTheWholeSchema opens read-only (as `userstream
// users` does) a schema with no table, then one with only the first
// migration applied, as a stream creating the schema leaves it between its
// migrations: both are sink.ErrNoTable ("nothing stored yet"), not a Count
// failing on a missing user_counts. Once migrated, the open succeeds.
func TestReadOnlyOpenWaitsForTheWholeSchema(t *testing.T) {
	u, schema := fresh(t, nil)
	pool := schemaPool(t, schema)
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	openRO := func() error {
		s, err := postgres.Open(t.Context(), u, postgres.ReadOnly())
		if err == nil {
			_, err = s.Count(t.Context())
			s.Close()
		}
		return err
	}
	if err := openRO(); !errors.Is(err, sink.ErrNoTable) {
		t.Fatalf("read-only open of an empty schema: %v; want sink.ErrNoTable", err)
	}
	if err := postgres.MigrateTo(t.Context(), pool, 1); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("the migrations of this package: %v, %v", files, err)
	}
	want := fmt.Sprintf("version 1 of %d", len(files))
	err = openRO()
	if !errors.Is(err, sink.ErrNoTable) || !strings.Contains(err.Error(), want) {
		t.Fatalf("read-only open between migrations: %v; want sink.ErrNoTable naming %s", err, want)
	}
	w, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := openRO(); err != nil {
		t.Fatalf("read-only open of the migrated schema: %v", err)
	}
}
