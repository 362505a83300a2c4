package cassandra_test

import (
	"fmt"
	"testing"

	"github.com/userstream/userstream/internal/sink/sinktest"
)

// BenchmarkUpsert measures rows/s upserted through the driver into the
// CQL-protocol test double over loopback: the driver's and the wire's cost,
// not a real Cassandra's.
func BenchmarkUpsert(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			d := startDouble(b)
			s := open(b, testURL(d, ""))
			batch := sinktest.Records(0, size)
			for b.Loop() {
				if err := s.Upsert(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
