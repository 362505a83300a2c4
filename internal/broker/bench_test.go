package broker

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkEmbeddedProduce measures produce throughput to the embedded
// broker with a data dir: 300-byte values, keyed, batched by the client
// (idempotent, acks=all, linger 5ms, no compression), reported as
// records/s. Each iteration is one record; the final flush (every record
// acknowledged) is inside the timing.
func BenchmarkEmbeddedProduce(b *testing.B) {
	e := startBroker(b, b.TempDir())
	cl, _ := testClient(b, e.Addr(), kgo.ProducerLinger(5_000_000), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100_000))
	value := make([]byte, 300)
	rand.Read(value)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte(rand.Text())
	}
	ctx := context.Background()
	var failed error
	cb := func(_ *kgo.Record, err error) {
		if err != nil && failed == nil {
			failed = err
		}
	}
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for i := range b.N {
		cl.Produce(ctx, &kgo.Record{Topic: Topic, Key: keys[i%len(keys)], Value: value}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
