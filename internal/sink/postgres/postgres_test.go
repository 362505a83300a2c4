package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/user"
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

// fresh returns a URL for a schema and application name of the test's own
// (dropped when the test ends), and the name.
func fresh(tb testing.TB, extra url.Values) (string, string) {
	tb.Helper()
	base := testURL(tb)
	name := fmt.Sprintf("sinktest_%d_%d", os.Getpid(), time.Now().UnixNano())
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("USERSTREAM_TEST_POSTGRES does not parse: %v", err)
	}
	q := u.Query()
	q.Set("schema", name)
	q.Set("application_name", name)
	for k, vs := range extra {
		q[k] = vs
	}
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

// breakSessions terminates every server session of the application name,
// as a PostgreSQL restart or a network cut would.
func breakSessions(t *testing.T, app string) {
	admin := adminPool(t)
	defer admin.Close()
	var n int
	err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n)
	if err != nil {
		t.Fatalf("terminate sessions of %s: %v", app, err)
	}
	if n == 0 {
		t.Fatalf("no session of %s to terminate: the sink holds no idle connection?", app)
	}
	t.Logf("terminated %d sessions", n)
}

func TestConformance(t *testing.T) {
	testURL(t)
	nul := sinktest.Record(9001)
	nul.FirstName = "Nul\x00Byte"
	long := sinktest.Record(9002)
	long.Address = strings.Repeat("é", 300) // 600 bytes, over the 512-byte check
	badUTF8 := sinktest.Record(9003)
	badUTF8.LastName = "bad \xff\xfe utf-8"
	fold := []sinktest.Option{}
	if !unicodeLower(t) {
		fold = append(fold, sinktest.ASCIIFoldOnly())
	}
	for _, m := range postgres.Methods {
		t.Run(string(m), func(t *testing.T) {
			apps := map[sink.Sink]string{}
			sinktest.Run(t, func(t *testing.T) sink.Sink {
				u, app := fresh(t, url.Values{"upsert": {string(m)}})
				s, err := postgres.Open(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				if s.Method() != m {
					t.Fatalf("Method() = %q, want %q from the URL", s.Method(), m)
				}
				apps[s] = app
				return s
			}, append([]sinktest.Option{
				sinktest.TimePrecision(time.Microsecond),
				sinktest.Rejects(nul, long, badUTF8),
				sinktest.BreakConnection(func(t *testing.T, s sink.Sink) { breakSessions(t, apps[s]) }),
			}, fold...)...)
		})
	}
}

// unicodeLower reports whether the test database's lower() folds
// non-ASCII letters (a UTF-8 ctype), which Page's Search relies on for
// them; under the C locale it folds ASCII only, and the suite is told so.
func unicodeLower(t *testing.T) bool {
	admin := adminPool(t)
	defer admin.Close()
	var ok bool
	if err := admin.QueryRow(t.Context(), `SELECT lower('ZOË') = 'zoë'`).Scan(&ok); err != nil {
		t.Fatalf("check lower(): %v", err)
	}
	if !ok {
		t.Log("this database's lower() folds ASCII only (C ctype): Search is checked on ASCII letters")
	}
	return ok
}

func TestOpenErrors(t *testing.T) {
	base := testURL(t)
	withPassword := strings.Replace(base, "postgres://", "postgres://nobody:s3cr3t-pw@", 1)
	withPassword = strings.Replace(withPassword, "userstream@", "", 1)
	cases := []struct {
		name, url, want string
	}{
		{"unknown method", base + "&upsert=merge", "upsert method"},
		{"bad schema", base + "&schema=a-b", "not a plain identifier"},
		{"semicolon in query", base + "&schema=a;drop", "do not parse"},
		{"wrong scheme", "mysql://h/db", "want postgres or postgresql"},
		{"closed port", "postgres://u:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "connect"},
		{"wrong user", withPassword, "connect"},
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

// TestConcurrentOpen starts several sinks on one new schema at once, as
// `docker compose up --scale stream=3` does: the advisory lock makes one of
// them migrate and the others wait.
func TestConcurrentOpen(t *testing.T) {
	u, _ := fresh(t, nil)
	errc := make(chan error, 4)
	sinks := make(chan *postgres.Sink, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(t.Context(), u)
			if err == nil {
				sinks <- s
			}
			errc <- err
		}()
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	close(sinks)
	for s := range sinks {
		if err := s.Upsert(t.Context(), sinktest.Records(0, 10)); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
		if n, err := s.Count(t.Context()); err != nil || n != 10 {
			t.Fatalf("Count = %d, %v; want 10", n, err)
		}
		s.Close()
	}
}

// TestMethodsAgree writes overlapping batches with each method in turn into
// one table: each method must update the rows the previous one wrote and
// add the new ones.
func TestMethodsAgree(t *testing.T) {
	u, _ := fresh(t, nil)
	for i, m := range postgres.Methods {
		s, err := postgres.Open(t.Context(), u, postgres.WithMethod(m))
		if err != nil {
			t.Fatal(err)
		}
		batch := sinktest.Records(i*100, 1500) // overlaps the previous method's rows
		if err := s.Upsert(t.Context(), batch); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		for _, r := range []user.Record{batch[0], batch[777], batch[1499]} {
			got, err := s.Get(t.Context(), r.ID)
			if err != nil || got.FirstName != r.FirstName || !got.IngestedAt.Equal(r.IngestedAt.Truncate(time.Microsecond)) {
				t.Fatalf("%s: Get(%s) = %+v, %v; want %+v", m, r.ID, got, err, r)
			}
		}
		n, err := s.Count(t.Context())
		if err != nil || n != int64(i*100+1500) {
			t.Fatalf("%s: Count = %d, %v; want %d", m, n, err, i*100+1500)
		}
		s.Close()
	}
}
