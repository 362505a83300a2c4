package peers

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// shared is the Apache Kafka node the stream and sink comparisons share
// (both sides of a pair read it, so it is no side's cost); TestMain's
// m.Run returns before cleanup, so the test that starts it registers
// nothing and closeShared stops it.
var shared struct {
	once sync.Once
	k    *engines.Kafka
	dir  string
	err  error
}

// sharedKafka starts one Apache Kafka 4 node (the JVM's defaults, as
// docs/engines.md says benchmarks run, not the tests' QuickStartJVM) on
// first use and returns its bootstrap address.
func sharedKafka(t testing.TB) string {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no Apache Kafka here: %v", err)
	}
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "peers-kafka-"); shared.err != nil {
			return
		}
		shared.k, shared.err = engines.StartKafka(context.Background(), shared.dir, engines.WithStartTimeout(4*time.Minute))
	})
	if shared.err != nil {
		t.Fatalf("start Apache Kafka: %v", shared.err)
	}
	return shared.k.Bootstrap()
}

func closeShared() {
	if shared.k != nil {
		_ = shared.k.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// startKafka starts a fresh Apache Kafka 4 node of the test's own (the
// JVM's defaults), stopped when the test ends.
func startKafka(t *testing.T) *engines.Kafka {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no Apache Kafka here: %v", err)
	}
	k, err := engines.StartKafka(t.Context(), t.TempDir(), engines.WithStartTimeout(4*time.Minute))
	if err != nil {
		t.Fatalf("start Apache Kafka: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// produceJSON runs `userstream produce` for n users in JSON (no registry)
// into users_created on kafka, at most rate users/s (0: unpaced). Paced,
// it fetches 100 users a request, so the rate is held in steps of 100
// users rather than bursts of a second's worth.
func produceJSON(t testing.TB, kafka string, n int, rate float64) {
	t.Helper()
	args := []string{"produce", "--brokers", kafka, "--schema-registry", "none", "--format", "json",
		"--users", strconv.Itoa(n)}
	if rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--batch-size", "100")
	}
	if _, errOut, code := proctest.Run(t, args...); code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
}

// deleteTopic deletes topic (when it exists) and waits until the cluster
// no longer lists it, so the next produce creates it anew, empty.
func deleteTopic(t testing.TB, kafka, topic string) {
	t.Helper()
	adm := kadm.NewClient(proctest.Client(t, kafka))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		if r, ok := resp[topic]; ok && r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	testwait.For(t, time.Minute, "topic "+topic+" to be gone", func() (bool, bool) {
		ts, err := adm.ListTopics(t.Context())
		if err != nil {
			return false, false
		}
		return ts.Has(topic), !ts.Has(topic)
	}, testwait.Every(200*time.Millisecond))
}

// endOffsets are the end offsets of topic's partitions.
func endOffsets(t testing.TB, kafka, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(proctest.Client(t, kafka)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	m := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m
}

func total(offs map[int32]int64) int {
	n := 0
	for _, o := range offs {
		n += int(o)
	}
	return n
}

// producedAt reads topic from the offsets from to the offsets to and
// returns each user's id with its record's timestamp (the producer's
// clock when it handed the record over).
func producedAt(t testing.TB, kafka, topic string, from, to map[int32]int64) map[string]time.Time {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	want := 0
	for p, end := range to {
		if end > from[p] {
			parts[p] = kgo.NewOffset().At(from[p])
			want += int(end - from[p])
		}
	}
	got := make(map[string]time.Time, want)
	if want == 0 {
		return got
	}
	cl := proctest.Client(t, kafka, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for read := 0; read < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s back: %v", read, want, topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Partition] {
				return
			}
			read++
			var u struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.Value, &u); err != nil {
				t.Fatalf("%s/%d@%d is not a user in JSON: %v", topic, r.Partition, r.Offset, err)
			}
			got[u.ID] = r.Timestamp
		})
	}
	return got
}

// fill is how long table took, from begin, to hold its first row and to
// hold want rows (a wait of at most 15 minutes, polled every 100 ms). A
// non-nil check is asked at every poll whether the writer still works
// (its process runs, its task is not FAILED): its error fails the test
// at once rather than at the timeout.
func fill(t testing.TB, pg, table string, want int, begin time.Time, check func() error) (first, all time.Duration) {
	t.Helper()
	conn := pgConn(t, pg)
	schema, name, _ := strings.Cut(table, ".")
	q := "SELECT count(*) FROM " + pgx.Identifier{schema, name}.Sanitize()
	testwait.For(t, 15*time.Minute, table+" to hold "+strconv.Itoa(want)+" rows", func() (int, bool) {
		var got int
		// Until a side's migrations have run the table is missing: 0.
		_ = conn.QueryRow(t.Context(), q).Scan(&got)
		if check != nil && got < want {
			if err := check(); err != nil {
				t.Fatalf("%s holds %d of %d rows: %v", table, got, want, err)
			}
		}
		if got > 0 && first == 0 {
			first = time.Since(begin)
		}
		return got, got >= want
	}, testwait.Every(100*time.Millisecond))
	return first, time.Since(begin)
}

// latencies are stored_at minus the produce timestamp of each user of
// produced that table holds.
func latencies(t testing.TB, pg, table string, produced map[string]time.Time) []time.Duration {
	t.Helper()
	ids := make([]string, 0, len(produced))
	for id := range produced {
		ids = append(ids, id)
	}
	schema, name, _ := strings.Cut(table, ".")
	rows, err := pgConn(t, pg).Query(t.Context(), "SELECT id::text, stored_at FROM "+pgx.Identifier{schema, name}.Sanitize()+
		" WHERE id = ANY($1::uuid[])", ids)
	if err != nil {
		t.Fatalf("read stored_at of %s: %v", table, err)
	}
	var ds []time.Duration
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatalf("read stored_at of %s: %v", table, err)
		}
		ds = append(ds, at.Sub(produced[id]))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read stored_at of %s: %v", table, err)
	}
	if len(ds) != len(produced) {
		t.Fatalf("%s holds %d of the %d users produced at a fixed rate", table, len(ds), len(produced))
	}
	return ds
}

// pgConn is a connection to pg, closed when the test ends.
func pgConn(t testing.TB, pg string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
