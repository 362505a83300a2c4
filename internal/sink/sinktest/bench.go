package sinktest

import (
	"context"
	"fmt"
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

// BenchmarkPage measures Page and Stats on s, which holds rows users (a
// twentieth of them with nat FR), as sub-benchmarks reporting ms a call:
// the first page of 50, the page of 50 after deep (the cursor after the
// user at position rows*9/10, 0 the newest), the first page of 50 with
// Nat "FR", and Stats.
func BenchmarkPage(b *testing.B, s sink.Sink, rows int, deep string) {
	ctx := context.Background()
	run := func(name string, f func() error) { BenchmarkCalls(b, name, f) }
	page := func(q sink.PageQuery, want int) func() error {
		return func() error {
			p, err := s.Page(ctx, q)
			if err == nil && len(p.Users) != want {
				err = fmt.Errorf("Page(%+v) = %d users, want %d", q, len(p.Users), want)
			}
			return err
		}
	}
	run("first", page(sink.PageQuery{Limit: 50}, min(50, rows)))
	run("deep", page(sink.PageQuery{Limit: 50, After: deep}, min(50, rows-rows*9/10-1)))
	run("nat", page(sink.PageQuery{Limit: 50, Nat: "FR"}, min(50, rows/20)))
	run("stats", func() error {
		st, err := s.Stats(ctx)
		if err == nil && st.Total != int64(rows) {
			err = fmt.Errorf("Stats.Total = %d, want %d", st.Total, rows)
		}
		return err
	})
}

// BenchmarkCalls runs f as the sub-benchmark name and reports ms a call;
// an error from f fails it.
func BenchmarkCalls(b *testing.B, name string, f func() error) {
	b.Run(name, func(b *testing.B) {
		for b.Loop() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
	})
}
