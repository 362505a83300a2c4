package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/sink/sqlite"
	"github.com/userstream/userstream/internal/user"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sink.Sink {
		s, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "users.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, sinktest.TimePrecision(time.Nanosecond), sinktest.Rejects(tooLong()))
}

// tooLong is a valid-id record with a last name over the 512-byte limit the
// table checks.
func tooLong() user.Record {
	r := sinktest.Record(9999)
	r.LastName = strings.Repeat("é", 257) // 514 bytes
	return r
}

func TestConformanceMemory(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sink.Sink {
		s, err := sqlite.Open(t.Context(), "sqlite::memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, sinktest.TimePrecision(time.Nanosecond), sinktest.LargeBatch(1000), sinktest.Rejects(tooLong()))
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		url, path, errPart string
	}{
		{url: "sqlite:./data/users.db", path: "./data/users.db"},
		{url: "sqlite:data/users.db", path: "data/users.db"},
		{url: "sqlite:///var/lib/userstream/users.db", path: "/var/lib/userstream/users.db"},
		{url: "sqlite:/tmp/u.db", path: "/tmp/u.db"},
		{url: "SQLITE:x.db", path: "x.db"},
		{url: "sqlite::memory:", path: ":memory:"},
		{url: "sqlite:", errPart: "names no file"},
		{url: "sqlite://", errPart: "names no file"},
		{url: "sqlite:./u.db?mode=ro", errPart: "query parameters"},
		{url: "postgres://h/db", errPart: "must start with sqlite:"},
		{url: "./users.db", errPart: "must start with sqlite:"},
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

// TestReopenKeepsRows checks that the file outlives the sink and that a
// second Open of a migrated file neither fails nor loses rows.
func TestReopenKeepsRows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "dir") // created by Open
	url := "sqlite:" + filepath.Join(dir, "users.db")
	s, err := sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	batch := sinktest.Records(0, 25)
	if err := s.Upsert(t.Context(), batch); err != nil {
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
	n, err := s.Count(t.Context())
	if err != nil || n != 25 {
		t.Fatalf("Count after reopen = %d, %v; want 25", n, err)
	}
	got, err := s.Get(t.Context(), batch[7].ID)
	if err != nil || got != batch[7] {
		t.Fatalf("Get after reopen = %+v, %v; want %+v", got, err, batch[7])
	}
	if _, err := os.Stat(filepath.Join(dir, "users.db-wal")); err != nil {
		t.Errorf("no WAL file beside the database (journal_mode=WAL expected): %v", err)
	}
}

// TestTwoSinksOneFile checks that two sinks on one file (two processes,
// say the stream and `userstream users`) see each other's writes and that
// concurrent writers wait for the lock instead of failing.
func TestTwoSinksOneFile(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "users.db")
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
	errc := make(chan error, 2)
	go func() { errc <- a.Upsert(t.Context(), sinktest.Records(0, 2000)) }()
	go func() { errc <- b.Upsert(t.Context(), sinktest.Records(1000, 2000)) }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("concurrent Upsert from two sinks: %v", err)
		}
	}
	for _, s := range []*sqlite.Sink{a, b} {
		if n, err := s.Count(t.Context()); err != nil || n != 3000 {
			t.Fatalf("Count = %d, %v; want 3000", n, err)
		}
	}
}

func TestOpenUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(f, "users.db"))
	if err == nil {
		t.Fatal("Open under a regular file succeeded, want an error")
	}
	if errors.Is(err, sink.ErrClosed) {
		t.Fatalf("unexpected error kind: %v", err)
	}
}

func TestInsertCeiling(t *testing.T) {
	dir := t.TempDir()
	rate, err := sqlite.InsertCeiling(t.Context(), dir, sinktest.Records(0, 1000), 300)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("InsertCeiling = %v rows/s, want a positive rate", rate)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 0 {
		t.Fatalf("InsertCeiling left files behind: %v", left)
	}
	for _, c := range []struct {
		n, batch int
	}{{0, 10}, {10, 0}} {
		if _, err := sqlite.InsertCeiling(t.Context(), dir, sinktest.Records(0, c.n), c.batch); err == nil {
			t.Errorf("InsertCeiling(%d records, batch %d) succeeded, want an error", c.n, c.batch)
		}
	}
}
