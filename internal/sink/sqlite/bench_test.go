package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

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
