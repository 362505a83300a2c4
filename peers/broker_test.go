package peers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// recordSize is the value size of the broker comparison's records, about a
// user in JSON with its Kafka overhead.
const recordSize = 1024

// brokerRun is what one broker did.
type brokerRun struct {
	ready              time.Duration
	produceMB, consume float64 // MB/s (10^6 bytes)
	rssMiB             float64
}

// TestBroker: the embedded broker (`userstream broker`) and Apache Kafka
// 4.4 (one KRaft node, the JVM's defaults, docs/engines.md's small-machine
// settings), each started fresh in turn: time from start to ready (the
// embedded one answering a metadata request; Kafka's node formatted,
// started and answering one), then one franz-go client with the same
// settings (acks=all, idempotent, its default batching) produces
// USERSTREAM_PEERS_BROKER_RECORDS records of 1 KiB (500,000; 50,000
// quick) to a topic of 3 partitions and a second one consumes them all
// from the start: MB/s each way, and the broker process's peak RSS.
func TestBroker(t *testing.T) {
	quick := measured(t)
	n := size(t, "USERSTREAM_PEERS_BROKER_RECORDS", quick, 500000, 50000)
	if err := engines.Available(); err != nil {
		t.Skipf("no Apache Kafka here: %v", err)
	}
	var ours, kafka brokerRun
	t.Run("ours", func(t *testing.T) {
		addr := proctest.FreeAddr(t)
		begin := time.Now()
		b := proctest.Start(t, "broker", "broker", "--addr", addr, "--registry-addr", proctest.FreeAddr(t),
			"--data-dir", filepath.Join(t.TempDir(), "kafka"))
		waitMetadata(t, addr, b.Exited)
		ours = exercise(t, addr, n, time.Since(begin), func() []int { return []int{b.Pid()} })
	})
	t.Run("Apache Kafka", func(t *testing.T) {
		begin := time.Now()
		k := startKafka(t)
		waitMetadata(t, k.Bootstrap(), func() bool { return !k.Processes()[0].Alive() })
		kafka = exercise(t, k.Bootstrap(), n, time.Since(begin), func() []int { return []int{k.Processes()[0].Pid} })
	})
	if t.Failed() {
		return
	}
	peer := "Apache Kafka 4.4.0, one KRaft node"
	record(t, "broker: time from start to ready", peer, "s", ours.ready.Seconds(), kafka.ready.Seconds(), true)
	record(t, "broker: produce, 1 KiB records, acks=all", peer, "MB/s", ours.produceMB, kafka.produceMB, false)
	record(t, "broker: consume from the start", peer, "MB/s", ours.consume, kafka.consume, false)
	record(t, "broker: peak RSS", peer, "MiB", ours.rssMiB, kafka.rssMiB, true)
}

// waitMetadata waits until the broker at addr answers a metadata request,
// failing at once when exited says its process is gone.
func waitMetadata(t *testing.T, addr string, exited func() bool) {
	t.Helper()
	cl := proctest.Client(t, addr)
	adm := kadm.NewClient(cl)
	testwait.For(t, 4*time.Minute, "the broker at "+addr+" to answer a metadata request", func() (string, bool) {
		if exited() {
			t.Fatalf("the broker at %s exited before it was ready", addr)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		m, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprint(len(m.Brokers), " brokers"), len(m.Brokers) > 0
	}, testwait.Every(20*time.Millisecond))
}

// exercise produces n records of recordSize to a new topic of 3 partitions
// on the broker at addr, consumes them back from the start, and reads the
// broker's peak RSS.
func exercise(t *testing.T, addr string, n int, ready time.Duration, pids func() []int) brokerRun {
	t.Helper()
	const topic = "peers-broker"
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	p := proctest.Client(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	if _, err := kadm.NewClient(p).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	// Values of random printable bytes: neither side compresses them.
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([][]byte, 64)
	for i := range values {
		values[i] = make([]byte, recordSize)
		for j := range values[i] {
			values[i][j] = byte('!' + rng.IntN(90))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error // the first failed record's
	begin := time.Now()
	for i := range n {
		wg.Add(1)
		p.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%036d", i), Value: values[i%len(values)]},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	produced := time.Since(begin)
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	bytes := float64(n) * (recordSize + 36)

	c := proctest.Client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	begin = time.Now()
	for read := 0; read < n; {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", read, n, ctx.Err())
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		read += fs.NumRecords()
	}
	consumed := time.Since(begin)
	r := brokerRun{ready: ready, produceMB: bytes / 1e6 / produced.Seconds(), consume: bytes / 1e6 / consumed.Seconds(), rssMiB: rss(pids()...)}
	t.Logf("ready in %s; %d records produced in %s (%.1f MB/s), consumed in %s (%.1f MB/s); peak RSS %.0f MiB",
		ready, n, produced, r.produceMB, consumed, r.consume, r.rssMiB)
	return r
}
