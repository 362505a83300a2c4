package postgres_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sinktest"
)

// USERSTREAM_TEST_POSTGRES=postgres://... go test -run '^$' -bench . -benchtime 2s ./internal/sink/postgres/
func BenchmarkUpsert(b *testing.B) {
	for _, m := range postgres.Methods {
		for _, mode := range []struct {
			name  string
			fresh bool
		}{{"new", true}, {"replay", false}} {
			for _, size := range []int{500, 5000} {
				b.Run(fmt.Sprintf("%s/%s/batch=%d", m, mode.name, size), func(b *testing.B) {
					u, _ := fresh(b, url.Values{"upsert": {string(m)}})
					s, err := postgres.Open(b.Context(), u)
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					sinktest.BenchmarkUpsert(b, s, size, mode.fresh)
				})
			}
		}
	}
}

// BenchmarkPage measures Page on a table of 100 and of 1,000,000 users:
// the first page, a page 900,000 users deep (through its cursor), a
// filtered first page (Nat, which a twentieth of the users have), and
// Stats. Keyset paging makes the deep page cost what the first does. The
// table is filled by one INSERT ... SELECT FROM generate_series (about
// 30 s for a million rows, indexes and count triggers included).
//
//	USERSTREAM_TEST_POSTGRES=postgres://... go test -run '^$' -bench Page -benchtime 20x ./internal/sink/postgres/
func BenchmarkPage(b *testing.B) {
	for _, rows := range []int{100, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			u, _ := fresh(b, nil)
			s, err := postgres.Open(b.Context(), u)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			if err := postgres.BulkFill(b.Context(), s, rows); err != nil {
				b.Fatal(err)
			}
			b.Logf("filled %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
			sinktest.BenchmarkPage(b, s, rows, postgres.BulkCursor(rows, rows*9/10))
		})
	}
}
