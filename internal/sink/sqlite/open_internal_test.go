package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/sqlitefile"
)

// TestConcurrentOpensOfOneFile opens one fresh file from several pools at
// once, many times, as Connect's tasks of one connector do on a worker's
// start. Each first connection switches the file to WAL, and when two do
// it together SQLite fails one with SQLITE_BUSY at once, without waiting
// in the busy handler, so opens take sqlitefile.Lock as Open does (without
// it, 4 runs of 4 here failed within 35 rounds). Whole sinks opened
// together (the migrations racing too) must each open and write.
func TestConcurrentOpensOfOneFile(t *testing.T) {
	cases := []struct {
		name          string
		rounds, opens int
		open          func(ctx context.Context, path string, i int) error
	}{
		{"first connections", 100, 8, func(ctx context.Context, path string, _ int) error {
			release, err := sqlitefile.Lock(ctx, path)
			if err != nil {
				return err
			}
			defer release()
			db, err := openDB(path, readerCache)
			if err != nil {
				return err
			}
			return db.Close()
		}},
		{"sinks", 3, 8, func(ctx context.Context, path string, i int) error {
			s, err := Open(ctx, "sqlite:"+path)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Upsert(ctx, sinktest.Records(i*10, 10))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for r := range c.rounds {
				path := filepath.Join(t.TempDir(), fmt.Sprintf("users-%d.db", r))
				var wg sync.WaitGroup
				errs := make([]error, c.opens)
				for i := range c.opens {
					wg.Go(func() { errs[i] = c.open(t.Context(), path, i) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, open %d: %v", r, i, err)
					}
				}
			}
		})
	}
}
