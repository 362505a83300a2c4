package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/sink/sqlite"
)

// go test -run '^$' -bench . -benchtime 2s ./internal/sink/sqlite/
func BenchmarkUpsert(b *testing.B) {
	for _, mode := range []struct {
		name  string
		fresh bool
	}{{"new", true}, {"replay", false}} {
		for _, size := range []int{500} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, size), func(b *testing.B) {
				s, err := sqlite.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "users.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				sinktest.BenchmarkUpsert(b, s, size, mode.fresh)
			})
		}
	}
}

// BenchmarkUpsertBesideBusyCore is BenchmarkUpsert/new with a goroutine
// spinning on arithmetic beside it (no memory traffic, no locks): what the
// sink loses when the machine's other core is taken, as it is under the
// stream (the broker, the consumer, decoding). On the 2-vCPU VM of
// docs/benchmarks.md: about a fifth.
func BenchmarkUpsertBesideBusyCore(b *testing.B) {
	var stop atomic.Bool
	spun := make(chan uint64)
	go func() {
		x := uint64(1)
		for !stop.Load() {
			for range 1000 {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		spun <- x
	}()
	defer func() { stop.Store(true); <-spun }()
	s, err := sqlite.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "users.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sinktest.BenchmarkUpsert(b, s, 500, true)
}

// BenchmarkInsertCeiling runs sqlite.InsertCeiling: plain batched inserts of
// the same rows into a table with no key, the limit upserts are measured
// against.
func BenchmarkInsertCeiling(b *testing.B) {
	records := sinktest.Records(0, 20000)
	dir := b.TempDir()
	var rate float64
	for b.Loop() {
		r, err := sqlite.InsertCeiling(b.Context(), dir, records, 500)
		if err != nil {
			b.Fatal(err)
		}
		rate = r
	}
	b.ReportMetric(rate, "rows/s")
}

// BenchmarkPage measures Page on a table of 100 and of 1,000,000 users:
// the first page, a page 900,000 users deep (through its cursor), a
// filtered first page (Nat, which a twentieth of the users have), and
// Stats. Keyset paging makes the deep page cost what the first does. The
// table is filled by one INSERT ... SELECT from a recursive CTE (about
// 20 s for a million rows), then one Upsert takes the rows into the counts.
//
//	go test -run '^$' -bench Page -benchtime 20x ./internal/sink/sqlite/
func BenchmarkPage(b *testing.B) {
	for _, rows := range []int{100, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "users.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			if err := sqlite.BulkFill(b.Context(), s, rows); err != nil {
				b.Fatal(err)
			}
			b.Logf("filled %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
			sinktest.BenchmarkPage(b, s, rows, sqlite.BulkCursor(rows, rows*9/10))
		})
	}
}
