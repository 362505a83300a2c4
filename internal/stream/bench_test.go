package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/user"
)

// slowSink is a test double of a sink that spends a fixed time per row, the
// way a real one spends it writing, so the benchmark shows how much of the
// sink's time the stream hides.
type slowSink struct {
	perRow time.Duration
	n      atomic.Int64
}

func (s *slowSink) Upsert(_ context.Context, b []user.Record) error {
	if s.perRow > 0 {
		time.Sleep(time.Duration(len(b)) * s.perRow) // the write time this sink stands in for
	}
	s.n.Add(int64(len(b)))
	return nil
}

// BenchmarkStream reports rows/s from a filled topic through decode,
// validate, sink and commit, with a sink that takes no time and with one
// that takes 15µs a row (about SQLite's upsert cost here).
func BenchmarkStream(b *testing.B) {
	for _, perRow := range []time.Duration{0, 15 * time.Microsecond} {
		b.Run(fmt.Sprintf("sink=%s/row", perRow), func(b *testing.B) {
			const n = 50_000
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, broker.Topic, broker.DLQTopic))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			addr := c.ListenAddrs()[0]
			p, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(broker.Topic))
			var rs []*kgo.Record
			for i := range n {
				r := record(i)
				v, _ := json.Marshal(r)
				rs = append(rs, &kgo.Record{Key: []byte(r.ID), Value: v})
			}
			if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			p.Close()
			b.ResetTimer()
			var total int64
			start := time.Now()
			for i := 0; i < b.N; i++ {
				cfg := stream.Config{Group: fmt.Sprintf("bench-%d", i), BatchSize: 1000}
				cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, stream.ConsumerOpts(cfg)...)...)
				if err != nil {
					b.Fatal(err)
				}
				snk := &slowSink{perRow: perRow}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- stream.Run(ctx, stream.ClientOf(cl), user.JSON{}, snk, cfg) }()
				testwait.For(b, 5*time.Minute, "the topic stored", func() (int64, bool) {
					got := snk.n.Load()
					return got, got >= n
				}, testwait.Every(time.Millisecond))
				cancel()
				<-done
				total += n
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
