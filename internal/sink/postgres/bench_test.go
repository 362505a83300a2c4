package postgres_test

import (
	"fmt"
	"net/url"
	"testing"

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
