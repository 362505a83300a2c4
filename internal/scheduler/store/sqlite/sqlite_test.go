package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/scheduler/store/storetest"
	sinksqlite "github.com/userstream/userstream/internal/sink/sqlite"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) scheduler.Store {
		s, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) scheduler.Store {
		s, err := sqlite.Open(t.Context(), "sqlite::memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		url, path, errPart string
	}{
		{url: "sqlite:./data/meta.db", path: "./data/meta.db"},
		{url: "sqlite:data/meta.db", path: "data/meta.db"},
		{url: "sqlite:///var/lib/userstream/meta.db", path: "/var/lib/userstream/meta.db"},
		{url: "sqlite:/tmp/m.db", path: "/tmp/m.db"},
		{url: "SQLITE:x.db", path: "x.db"},
		{url: "sqlite::memory:", path: ":memory:"},
		{url: "sqlite:", errPart: "names no file"},
		{url: "sqlite://", errPart: "names no file"},
		{url: "sqlite:./m.db?mode=ro", errPart: "query parameters"},
		{url: "postgres://h/db", errPart: "must start with sqlite:"},
		{url: "./meta.db", errPart: "must start with sqlite:"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			path, err := sqlite.ParseURL(c.url)
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("ParseURL(%q) = %q, %v; want an error containing %q", c.url, path, err, c.errPart)
				}
				return
			}
			if err != nil || path != c.path {
				t.Fatalf("ParseURL(%q) = %q, %v; want %q", c.url, path, err, c.path)
			}
		})
	}
}

func run(i int) scheduler.Run {
	ld := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
	return scheduler.Run{DagID: "user_automation", RunID: "scheduled__" + ld.Format(time.RFC3339),
		RunType: scheduler.RunScheduled, LogicalDate: ld, State: scheduler.RunQueued}
}

// TestReopenKeepsData checks that the file outlives the store, that a
// second Open of a migrated file neither fails nor loses rows, and that the
// file is in WAL mode.
func TestReopenKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "dir") // created by Open
	url := "sqlite:" + filepath.Join(dir, "meta.db")
	s, err := sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(t.Context(), run(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetRun(t.Context(), run(0).DagID, run(0).RunID); err != nil {
		t.Fatalf("GetRun after reopen: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.db-wal")); err != nil {
		t.Errorf("no WAL file beside the database (journal_mode=WAL expected): %v", err)
	}
}

// riverVersions is how many migrations River's SQLite driver has.
func riverVersions(t *testing.T) int {
	m, err := rivermigrate.New(riversqlite.New(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(m.AllVersions())
}

// countRows counts the rows of table in the database file, read with a
// connection of its own.
func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestConcurrentOpen opens one fresh file from several stores at once (as
// `userstream scheduler` and `userstream web` starting together would):
// every Open succeeds and each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	want := riverVersions(t)
	for round := range 3 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("meta%d.db", round))
		const n = 4
		stores := make([]*sqlite.Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = sqlite.Open(t.Context(), "sqlite:"+path) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent Open %d: %v", round, i, err)
			}
			defer stores[i].Close()
		}
		if got := countRows(t, path, "river_migration"); got != want {
			t.Errorf("round %d: river_migration has %d rows, want %d", round, got, want)
		}
		// goose keeps a row for version 0 (the table itself) and one a migration.
		if got, want := countRows(t, path, sqlite.VersionTable), 1+storetest.MigrationFiles(t); got != want {
			t.Errorf("round %d: %s has %d rows, want %d", round, sqlite.VersionTable, got, want)
		}
	}
}

// TestTwoStoresOneFile checks what several processes on one file rely on:
// one slot created from two stores at once goes to exactly one, each sees
// the other's rows, and a job inserted through one store's queue is worked
// by the other's.
func TestTwoStoresOneFile(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "meta.db")
	a, err := sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	for i := range 5 {
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for j, s := range []*sqlite.Store{a, b} {
			wg.Go(func() { errs[j] = s.CreateRun(t.Context(), run(i)) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("slot %d from two stores: errors %v and %v, want exactly one nil", i, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, scheduler.ErrExists) {
				t.Fatalf("slot %d: the loser's error %v does not match ErrExists", i, err)
			}
		}
	}
	for _, s := range []*sqlite.Store{a, b} {
		if _, total, err := s.ListRuns(t.Context(), scheduler.RunFilter{}); err != nil || total != 5 {
			t.Fatalf("ListRuns total = %d, %v; want 5", total, err)
		}
	}

	got := make(chan string, 1)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[echoArgs]) error {
		got <- job.Args.Text
		return nil
	}))
	worker, err := b.Queue(&river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers: workers, FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), TestOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := worker.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	inserter, err := a.Queue(&river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.Insert(t.Context(), echoArgs{Text: "from a"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case text := <-got:
		if text != "from a" {
			t.Errorf("worked %q, want %q", text, "from a")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job inserted through one store was not worked through the other within 30s")
	}
}

type echoArgs struct {
	Text string `json:"text"`
}

func (echoArgs) Kind() string { return "sqlite_test_echo" }

// TestSharesFileWithSink opens the users sink and the metadata store on
// one file: their goose version tables are apart, so neither skips the
// other's migrations.
func TestSharesFileWithSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.db")
	sink, err := sinksqlite.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s, err := sqlite.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateRun(t.Context(), run(0)); err != nil {
		t.Fatalf("CreateRun in a file the sink migrated first: %v", err)
	}
	if n, err := sink.Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("sink Count = %d, %v; want 0", n, err)
	}
}

func TestOpenUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(f, "meta.db")); err == nil {
		s.Close()
		t.Fatal("Open under a regular file succeeded, want an error")
	}
}
