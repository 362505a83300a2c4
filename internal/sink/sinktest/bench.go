package sinktest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// BenchmarkUpsert measures s.Upsert with batches of size records and
// reports rows/s. With fresh set, every batch carries ids not stored yet
// (the stream's steady state); otherwise the same batch is written again
// and again (a replay after a crash: all updates). Fresh batches also get
// ingested_at times that only grow, as the stream's do.
func BenchmarkUpsert(b *testing.B, s sink.Sink, size int, fresh bool) {
	ctx := context.Background()
	template := Records(0, size)
	batch := make([]user.Record, size)
	copy(batch, template)
	rows := 0
	at := time.Now().UTC()
	for b.Loop() {
		if fresh {
			for i := range batch {
				batch[i].ID = uuid.NewString() // random, as the API's login.uuid
				at = at.Add(time.Microsecond)
				batch[i].IngestedAt = at
			}
		}
		if err := s.Upsert(ctx, batch); err != nil {
			b.Fatalf("Upsert: %v", err)
		}
		rows += size
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
