package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/postgres"
	"github.com/userstream/userstream/internal/scheduler/store/storetest"
)

// testURL returns the PostgreSQL URL the tests use, or skips the test when
// USERSTREAM_TEST_POSTGRES is not set.
func testURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if u == "" {
		tb.Skip("USERSTREAM_TEST_POSTGRES is not set, so there is no PostgreSQL to test against " +
			"(scripts/test.sh starts a throwaway one when PostgreSQL's server is installed)")
	}
	return u
}

// fresh returns a URL for a schema of the test's own (dropped when the
// test ends), and the schema's name.
func fresh(tb testing.TB) (string, string) {
	tb.Helper()
	base := testURL(tb)
	name := fmt.Sprintf("storetest_%d_%d", os.Getpid(), time.Now().UnixNano())
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("USERSTREAM_TEST_POSTGRES does not parse: %v", err)
	}
	q := u.Query()
	q.Set("schema", name)
	u.RawQuery = q.Encode()
	tb.Cleanup(func() {
		admin := adminPool(tb)
		defer admin.Close()
		if _, err := admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return u.String(), name
}

func adminPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(context.Background(), testURL(tb))
	if err != nil {
		tb.Fatalf("connect to USERSTREAM_TEST_POSTGRES: %v", err)
	}
	return p
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) scheduler.Store {
		u, _ := fresh(t)
		s, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// count runs a count(*) query as the admin.
func count(t *testing.T, query string, args ...any) int {
	t.Helper()
	admin := adminPool(t)
	defer admin.Close()
	var n int
	if err := admin.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestConcurrentOpen starts several stores on one new schema at once, as
// several schedulers starting together do: all succeed, and each
// migration, the store's and River's, is applied once.
func TestConcurrentOpen(t *testing.T) {
	u, schema := fresh(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := pgx.Identifier{schema}.Sanitize()
	if got, want := count(t, `SELECT count(*) FROM `+id+`.river_migration`), len(m.AllVersions()); got != want {
		t.Errorf("river_migration has %d rows, want %d (one a version)", got, want)
	}
	// goose keeps a row for version 0 (the table itself) and one a migration.
	if got, want := count(t, `SELECT count(*) FROM `+id+`.`+postgres.VersionTable), 1+storetest.MigrationFiles(t); got != want {
		t.Errorf("%s has %d rows, want %d", postgres.VersionTable, got, want)
	}
	for _, s := range stores {
		if _, _, err := s.ListRuns(t.Context(), scheduler.RunFilter{}); err != nil {
			t.Fatalf("ListRuns: %v", err)
		}
	}
}

// TestRiverInSchema checks that River's tables are in the store's schema
// (and nowhere else), and that Queue refuses a Config naming another
// schema while taking the store's own.
func TestRiverInSchema(t *testing.T) {
	u, schema := fresh(t)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schema() != schema {
		t.Errorf("Schema() = %q, want %q", s.Schema(), schema)
	}
	for _, table := range []string{"river_job", "river_leader", "river_queue", "river_migration", "dag_run", postgres.VersionTable} {
		if n := count(t, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2`, schema, table); n != 1 {
			t.Errorf("table %s is not in schema %s", table, schema)
		}
	}
	if _, err := s.Queue(&river.Config{Schema: "public", Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("Queue with Config.Schema naming another schema succeeded, want an error")
	}
	q, err := s.Queue(&river.Config{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Queue with the store's own schema: %v", err)
	}
	res, err := q.Insert(t.Context(), noopArgs{}, nil)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	id := pgx.Identifier{schema}.Sanitize()
	if n := count(t, `SELECT count(*) FROM `+id+`.river_job WHERE id = $1`, res.Job.ID); n != 1 {
		t.Errorf("the inserted job is not in %s.river_job", schema)
	}
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "postgres_test_noop" }

func TestOpenErrors(t *testing.T) {
	base := testURL(t)
	withPassword := strings.Replace(base, "postgres://", "postgres://nobody:s3cr3t-pw@", 1)
	withPassword = strings.Replace(withPassword, "userstream@", "", 1)
	cases := []struct {
		name, url, want string
	}{
		{"bad schema", base + "&schema=a-b", "not a plain identifier"},
		{"schema starting with a digit", base + "&schema=1abc", "not a plain identifier"},
		{"schema too long for River", base + "&schema=" + strings.Repeat("s", postgres.MaxSchemaLen+1), "at most"},
		{"semicolon in query", base + "&schema=a;drop&password=s3cr3t-pw", "do not parse"},
		{"wrong scheme", "mysql://u:s3cr3t-pw@h/db", "want postgres or postgresql"},
		{"closed port", "postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "connect"},
		{"wrong user", withPassword, "connect"},
		{"bad pgx parameter", "postgres://u:s3cr3t-pw@127.0.0.1:1/db?pool_max_conns=zero", "pool_max_conns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), c.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded, want an error", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Fatalf("Open error leaks the password: %q", err)
			}
		})
	}
}

// TestByteOrder checks that names and states sort byte-wise whatever the
// database's collation (the suite's order cases cannot tell on a database
// whose default collation is C already): every such column is COLLATE "C".
func TestByteOrder(t *testing.T) {
	u, schema := fresh(t)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ table, column string }{
		{"dag", "dag_id"}, {"dag_run", "dag_id"}, {"dag_run", "run_id"}, {"dag_run", "state"}, {"dag_run", "run_type"},
		{"task_instance_try", "dag_id"}, {"task_instance_try", "run_id"}, {"task_instance_try", "task_id"},
		{"task_instance_try", "state"}, {"task_log", "task_id"}, {"ab_user", "name"},
	} {
		n := count(t, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name = $3 AND collation_name = 'C'`,
			schema, c.table, c.column)
		if n != 1 {
			t.Errorf("%s.%s is not COLLATE \"C\"", c.table, c.column)
		}
	}
}
