package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/user"
)

// memSink is an in-memory test double of a sink: it upserts by id like every
// real driver, can be told to fail, and counts writes so tests can see
// replays.
type memSink struct {
	mu      sync.Mutex
	rows    map[string]user.Record
	writes  int
	failFor int // fail this many more Upsert calls
}

func newMemSink() *memSink { return &memSink{rows: map[string]user.Record{}} }

func (s *memSink) Upsert(_ context.Context, batch []user.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFor > 0 {
		s.failFor--
		return errors.New("sink unavailable (scripted)")
	}
	s.writes += len(batch)
	for _, r := range batch {
		s.rows[r.ID] = r
	}
	return nil
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

func (s *memSink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rows[id]
	return ok
}

func newCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, broker.Topic, broker.DLQTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func record(i int) user.Record {
	return user.Record{
		ID:        uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "user-%d", i)).String(),
		FirstName: "Ada", LastName: fmt.Sprintf("Lovelace%d", i), Gender: "female",
		Address: "1 Main St, Paris, Ile-de-France, France", PostCode: "75001",
		Email: fmt.Sprintf("ada%d@example.com", i), Username: fmt.Sprintf("ada%d", i),
		DOB: "1980-01-02T03:04:05.678Z", RegisteredDate: "2010-01-02T03:04:05.678Z",
		Phone: "01-23-45-67-89", Picture: "https://randomuser.me/api/portraits/med/women/1.jpg",
		Nat: "FR", IngestedAt: time.Now().UTC(), RunID: "test",
	}
}

func produce(t *testing.T, addr string, values map[string][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(broker.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for k, v := range values {
		r := &kgo.Record{Value: v}
		if k != "" && k[0] != '!' { // keys starting with ! mean "send without a key"
			r.Key = []byte(k)
		}
		rs = append(rs, r)
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func produceUsers(t *testing.T, addr string, from, to int) []string {
	t.Helper()
	vals := map[string][]byte{}
	var ids []string
	for i := from; i < to; i++ {
		r := record(i)
		b, _ := json.Marshal(r)
		vals[r.ID] = b
		ids = append(ids, r.ID)
	}
	produce(t, addr, vals)
	return ids
}

type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, addr string, snk stream.Sink, cfg stream.Config) *runner {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr)}, stream.ConsumerOpts(cfg)...)
	dial := func(context.Context) (stream.Client, error) { return kgo.NewClient(opts...) }
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- stream.Run(ctx, dial, user.JSON{}, snk, cfg) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("stream did not stop within 30s")
		return nil
	}
}

// committed returns the group's committed offsets summed over partitions.
func committed(t *testing.T, addr, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsgOffsetFetch(group, broker.Topic)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.Offset > 0 {
				sum += p.Offset
			}
		}
	}
	return sum
}

func TestStoresEveryUserAndCommits(t *testing.T) {
	addr := newCluster(t)
	ids := produceUsers(t, addr, 0, 2500)
	snk := newMemSink()
	reg := prometheus.NewRegistry()
	m := stream.NewMetrics(reg)
	r := start(t, addr, snk, stream.Config{BatchSize: 400, Metrics: m})
	testwait.For(t, 30*time.Second, "2500 users stored", func() (int, bool) { got := snk.count(); return got, got == 2500 })
	testwait.For(t, 30*time.Second, "offsets committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 2500 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run returned %v after a clean stop", err)
	}
	for _, id := range ids {
		if !snk.has(id) {
			t.Fatalf("user %s missing", id)
		}
	}
	if got := testutil.ToFloat64(m.Stored); got != 2500 {
		t.Errorf("stored metric = %v, want 2500", got)
	}
	if got := testutil.ToFloat64(m.Committed); got != 2500 {
		t.Errorf("committed metric = %v, want 2500", got)
	}
}

func TestPoisonMessagesGoToDLQAndStreamContinues(t *testing.T) {
	addr := newCluster(t)
	bad := record(1)
	bad.Email = "not an email"
	badJSON, _ := json.Marshal(bad)
	produce(t, addr, map[string][]byte{
		"!garbage": []byte("{this is not json"),
		"!invalid": badJSON,
	})
	ids := produceUsers(t, addr, 10, 60)
	snk := newMemSink()
	m := stream.NewMetrics(prometheus.NewRegistry())
	start(t, addr, snk, stream.Config{BatchSize: 16, Metrics: m})
	testwait.For(t, 30*time.Second, "50 good users stored", func() (int, bool) { got := snk.count(); return got, got == 50 })
	testwait.For(t, 30*time.Second, "offsets committed past the poison", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 52 })
	for _, id := range ids {
		if !snk.has(id) {
			t.Fatalf("good user %s missing", id)
		}
	}
	if snk.has(bad.ID) {
		t.Fatal("the invalid user was stored")
	}

	// Read the DLQ and check what it says.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(broker.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kinds := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(kinds) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[stream.HeaderTopic] != broker.Topic || h[stream.HeaderOffset] == "" || h[stream.HeaderPartition] == "" {
				t.Errorf("dead letter lacks its origin: %v", h)
			}
			if h[stream.HeaderError] == "" {
				t.Errorf("dead letter lacks the reason: %v", h)
			}
			kinds[string(r.Value)] = h[stream.HeaderErrorKind]
		})
	}
	if kinds["{this is not json"] != "decode" {
		t.Errorf("garbage dead-lettered as %q, want decode (got %v)", kinds["{this is not json"], kinds)
	}
	if kinds[string(badJSON)] != "validate" {
		t.Errorf("invalid user dead-lettered as %q, want validate", kinds[string(badJSON)])
	}
	if got := testutil.ToFloat64(m.DeadLettered.WithLabelValues("decode")) + testutil.ToFloat64(m.DeadLettered.WithLabelValues("validate")); got != 2 {
		t.Errorf("dead-lettered metric = %v, want 2", got)
	}
}

func TestSinkOutageIsRetriedAndLosesNothing(t *testing.T) {
	addr := newCluster(t)
	ids := produceUsers(t, addr, 0, 300)
	snk := newMemSink()
	snk.failFor = 5
	m := stream.NewMetrics(prometheus.NewRegistry())
	start(t, addr, snk, stream.Config{BatchSize: 100, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, Metrics: m})
	testwait.For(t, 30*time.Second, "300 users stored after the outage", func() (int, bool) { got := snk.count(); return got, got == 300 })
	testwait.For(t, 30*time.Second, "offsets committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 300 })
	for _, id := range ids {
		if !snk.has(id) {
			t.Fatalf("user %s lost during the outage", id)
		}
	}
	if got := testutil.ToFloat64(m.Retries.WithLabelValues("sink upsert")); got != 5 {
		t.Errorf("sink retries = %v, want 5", got)
	}
}

// TestCrashAfterStoreBeforeCommit stops the stream after the sink has a
// batch and before its offsets are committed; a restarted stream replays the
// batch, and the sink ends with every user once.
func TestCrashAfterStoreBeforeCommit(t *testing.T) {
	addr := newCluster(t)
	ids := produceUsers(t, addr, 0, 1000)
	snk := newMemSink()
	crash := errors.New("crash between store and commit")
	var once sync.Once
	crashed := false
	r := start(t, addr, snk, stream.Config{BatchSize: 300, AfterStore: func(context.Context, []user.Record) error {
		var err error
		once.Do(func() { crashed = true; err = crash })
		return err
	}})
	select {
	case err := <-r.done:
		if !errors.Is(err, crash) {
			t.Fatalf("first run ended with %v, want the crash", err)
		}
		close(r.done)
	case <-time.After(30 * time.Second):
		t.Fatal("first run did not crash")
	}
	if !crashed {
		t.Fatal("hook never ran")
	}
	before := snk.count()
	if before == 0 {
		t.Fatal("the crashed batch was not stored; the test would prove nothing")
	}
	if c := committed(t, addr, stream.DefaultGroup); c != 0 {
		t.Fatalf("committed %d offsets before the crash; want none", c)
	}

	start(t, addr, snk, stream.Config{BatchSize: 300})
	testwait.For(t, 30*time.Second, "every user after restart", func() (int, bool) { got := snk.count(); return got, got == 1000 })
	testwait.For(t, 30*time.Second, "offsets committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 1000 })
	if snk.writes < 1000+before {
		t.Errorf("sink saw %d writes; the crashed batch (%d) should have been replayed", snk.writes, before)
	}
	got := make([]string, 0, len(ids))
	snk.mu.Lock()
	for id := range snk.rows {
		got = append(got, id)
	}
	snk.mu.Unlock()
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatal("the rows after restart are not exactly the produced users")
	}
}

func TestOriginalShapeWithoutKeys(t *testing.T) {
	addr := newCluster(t)
	id := uuid.NewString()
	orig := fmt.Sprintf(`{"id": %q, "first_name": "Kenneth", "last_name": "Fields", "gender": "male",
		"address": "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", "post_code": 1395,
		"email": "kenneth.fields@example.com", "username": "smallmouse740",
		"dob": "1972-04-16T10:36:10.290Z", "registered_date": "2018-10-21T00:27:38.583Z",
		"phone": "00-7601-9760", "picture": "https://randomuser.me/api/portraits/med/men/68.jpg"}`, id)
	produce(t, addr, map[string][]byte{"!orig": []byte(orig)})
	snk := newMemSink()
	start(t, addr, snk, stream.Config{})
	testwait.For(t, 30*time.Second, "the original-shape user", func() (int, bool) { return snk.count(), snk.has(id) })
	snk.mu.Lock()
	got := snk.rows[id]
	snk.mu.Unlock()
	if got.PostCode != "1395" || got.DOB != "1972-04-16T10:36:10.290Z" || got.FirstName != "Kenneth" {
		t.Errorf("stored %+v", got)
	}
}

func TestStopFinishesBatchAndCommits(t *testing.T) {
	addr := newCluster(t)
	produceUsers(t, addr, 0, 200)
	snk := newMemSink()
	r := start(t, addr, snk, stream.Config{BatchSize: 50})
	testwait.For(t, 30*time.Second, "some users", func() (int, bool) { got := snk.count(); return got, got > 0 })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Everything stored has been committed, so nothing stored is ahead of
	// the group's offsets by more than zero messages.
	if c, n := committed(t, addr, stream.DefaultGroup), snk.count(); int64(n) != c {
		t.Errorf("after a clean stop the sink has %d users but %d offsets are committed", n, c)
	}
}

// countingSink forwards to a shared sink and counts what one worker wrote.
type countingSink struct {
	*memSink
	mu sync.Mutex
	n  int
}

func (c *countingSink) Upsert(ctx context.Context, batch []user.Record) error {
	if err := c.memSink.Upsert(ctx, batch); err != nil {
		return err
	}
	c.mu.Lock()
	c.n += len(batch)
	c.mu.Unlock()
	return nil
}

func (c *countingSink) stored() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestWorkersShareTheGroup runs two workers in one group: both take
// partitions, one leaves midway, and every user is stored once all the same.
func TestWorkersShareTheGroup(t *testing.T) {
	addr := newCluster(t)
	shared := newMemSink()
	a, b := &countingSink{memSink: shared}, &countingSink{memSink: shared}
	cfg := stream.Config{BatchSize: 100, BatchWait: 20 * time.Millisecond}
	ra := start(t, addr, a, cfg)
	produceUsers(t, addr, 0, 1500)
	testwait.For(t, 30*time.Second, "worker A to store the first users", func() (int, bool) { got := shared.count(); return got, got == 1500 })

	start(t, addr, b, cfg)
	// Keep producing until the group has rebalanced and B has work.
	next := 1500
	testwait.For(t, 30*time.Second, "worker B to get partitions", func() (string, bool) {
		produceUsers(t, addr, next, next+300)
		next += 300
		return fmt.Sprintf("B stored %d of %d produced", b.stored(), next), b.stored() > 0
	})
	if err := ra.stop(t); err != nil {
		t.Fatalf("worker A stop: %v", err)
	}
	produceUsers(t, addr, next, next+1500)
	next += 1500
	testwait.For(t, 30*time.Second, "every user stored after A left", func() (int, bool) { got := shared.count(); return got, got == next })
	testwait.For(t, 30*time.Second, "offsets committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == int64(next) })
	if a.stored() == 0 || b.stored() == 0 {
		t.Fatalf("both workers should have stored users: A %d, B %d", a.stored(), b.stored())
	}
	t.Logf("A stored %d, B stored %d, %d users in all", a.stored(), b.stored(), next)
}

// slowCountingSink is a countingSink that takes delay over every batch, as
// a database that is the pipeline's bottleneck does.
type slowCountingSink struct {
	*countingSink
	delay time.Duration
}

func (s slowCountingSink) Upsert(ctx context.Context, batch []user.Record) error {
	time.Sleep(s.delay) // the write time this sink stands in for
	return s.countingSink.Upsert(ctx, batch)
}

// TestJoinerGetsPartitionsDuringABacklog: a worker busy with a backlog
// lets a rebalance through while it lasts (kgo signals the waiting
// rebalance; the worker stores and commits what it holds and lets it
// through), so a worker that joins takes its share of the backlog instead
// of waiting until the first has drained it.
func TestJoinerGetsPartitionsDuringABacklog(t *testing.T) {
	addr := newCluster(t)
	const n = 12000
	produceUsers(t, addr, 0, n)
	shared := newMemSink()
	// A alone would take 120 batches x 40 ms, 4.8 s; a rebalance takes
	// a heartbeat (a second) or two to reach it.
	a := slowCountingSink{countingSink: &countingSink{memSink: shared}, delay: 40 * time.Millisecond}
	b := &countingSink{memSink: shared}
	cfg := stream.Config{BatchSize: 100}
	start(t, addr, a, cfg)
	testwait.For(t, 30*time.Second, "worker A to store its first users", func() (int, bool) { got := a.stored(); return got, got >= 300 })
	start(t, addr, b, cfg)
	testwait.For(t, 30*time.Second, "every user stored", func() (int, bool) { got := shared.count(); return got, got == n })
	if b.stored() == 0 {
		t.Fatalf("worker B stored nothing: A kept every partition through the backlog (A stored %d)", a.stored())
	}
	testwait.For(t, 30*time.Second, "offsets committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == n })
	t.Logf("A stored %d, B stored %d of the backlog of %d", a.stored(), b.stored(), n)
}

// movedClient is a *kgo.Client whose commits, from the after-th on, are
// refused with ILLEGAL_GENERATION, as every commit of a member is once the
// group has moved on without it (after a broker restart, say): a scripted
// fault around the real client.
type movedClient struct {
	*kgo.Client
	commits, after int
}

func (c *movedClient) CommitRecords(ctx context.Context, rs ...*kgo.Record) error {
	c.commits++
	if c.commits >= c.after {
		return kerr.IllegalGeneration
	}
	return c.Client.CommitRecords(ctx, rs...)
}

// TestRejoinsWhenTheGroupMovesOn: commits refused because the group moved
// on are not retried for ever; the worker drops what it holds, dials a new
// client and re-reads from the committed offsets, and every user is stored.
func TestRejoinsWhenTheGroupMovesOn(t *testing.T) {
	addr := newCluster(t)
	ids := produceUsers(t, addr, 0, 3000)
	snk := newMemSink()
	m := stream.NewMetrics(prometheus.NewRegistry())
	cfg := stream.Config{BatchSize: 200, Metrics: m, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond}
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr)}, stream.ConsumerOpts(cfg)...)
	dials := 0
	dial := func(context.Context) (stream.Client, error) {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, err
		}
		dials++
		if dials == 1 {
			return &movedClient{Client: cl, after: 3}, nil // the first session loses the group at its third commit
		}
		return cl, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx, dial, user.JSON{}, snk, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	testwait.For(t, 30*time.Second, "3000 users stored", func() (int, bool) { got := snk.count(); return got, got == 3000 })
	testwait.For(t, 30*time.Second, "every offset committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 3000 })
	for _, id := range ids {
		if !snk.has(id) {
			t.Fatalf("user %s lost", id)
		}
	}
	if got := testutil.ToFloat64(m.Rejoins); got != 1 {
		t.Errorf("rejoins = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Retries.WithLabelValues("offset commit")); got != 0 {
		t.Errorf("a refused commit was retried %v times; it can never succeed", got)
	}
}

// rejectingSink refuses, as data, every batch holding a first name with a
// NUL byte (as PostgreSQL does), and stores the others.
type rejectingSink struct{ *memSink }

func (s rejectingSink) Upsert(ctx context.Context, batch []user.Record) error {
	for _, r := range batch {
		if strings.ContainsRune(r.FirstName, 0) {
			return sink.Rejected("invalid byte sequence for encoding \"UTF8\": 0x00 (SQLSTATE 22021)",
				errors.New("upsert refused (scripted)"))
		}
	}
	return s.memSink.Upsert(ctx, batch)
}

// TestRejectedRecordsAreDeadLettered: records the sink refuses as data are
// isolated by splitting the batch, dead-lettered with the backend's reason,
// and every other record is stored.
func TestRejectedRecordsAreDeadLettered(t *testing.T) {
	addr := newCluster(t)
	vals := map[string][]byte{}
	var good []string
	var badIDs []string
	for i := range 1000 {
		r := record(i)
		if i%250 == 17 {
			r.FirstName = "a\u0000b"
			badIDs = append(badIDs, r.ID)
		} else {
			good = append(good, r.ID)
		}
		b, _ := json.Marshal(r)
		vals[r.ID] = b
	}
	produce(t, addr, vals)
	snk := rejectingSink{newMemSink()}
	m := stream.NewMetrics(prometheus.NewRegistry())
	start(t, addr, snk, stream.Config{BatchSize: 500, Metrics: m})
	testwait.For(t, 30*time.Second, "every good user stored", func() (int, bool) { got := snk.count(); return got, got == len(good) })
	testwait.For(t, 30*time.Second, "every offset committed", func() (int64, bool) { got := committed(t, addr, stream.DefaultGroup); return got, got == 1000 })
	for _, id := range good {
		if !snk.has(id) {
			t.Fatalf("good user %s missing", id)
		}
	}
	dead := readDLQ(t, addr, len(badIDs))
	for _, id := range badIDs {
		h, ok := dead[id]
		if !ok {
			t.Fatalf("refused user %s is not in the DLQ (got %v)", id, dead)
		}
		if h[stream.HeaderErrorKind] != stream.KindSink || !strings.Contains(h[stream.HeaderError], "SQLSTATE 22021") {
			t.Errorf("dead letter of %s says kind %q, error %q; want kind sink and the database's reason", id, h[stream.HeaderErrorKind], h[stream.HeaderError])
		}
	}
	if got := testutil.ToFloat64(m.DeadLettered.WithLabelValues(stream.KindSink)); got != float64(len(badIDs)) {
		t.Errorf("dead-lettered{kind=sink} = %v, want %d", got, len(badIDs))
	}
}

// readDLQ reads n dead letters and returns their headers by key.
func readDLQ(t *testing.T, addr string, n int) map[string]map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(broker.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			out[string(r.Key)] = h
		})
	}
	return out
}

// awayDecoder fails with the registry unavailable until back is set, then
// decodes JSON.
type awayDecoder struct{ back atomic.Bool }

func (d *awayDecoder) Decode(b []byte) (user.Record, error) {
	if !d.back.Load() {
		return user.Record{}, fmt.Errorf("fetching writer schema: %w", schema.ErrRegistryUnavailable)
	}
	return user.JSON{}.Decode(b)
}

// TestRegistryAwayWaitsNotDeadLetters: while the registry is unreachable,
// records wait and health says why; none is dead-lettered and all are
// stored once it is back.
func TestRegistryAwayWaitsNotDeadLetters(t *testing.T) {
	addr := newCluster(t)
	produceUsers(t, addr, 0, 500)
	snk := newMemSink()
	m := stream.NewMetrics(prometheus.NewRegistry())
	h := stream.NewHealth(time.Hour, time.Millisecond)
	dec := &awayDecoder{}
	cfg := stream.Config{BatchSize: 100, Metrics: m, Health: h, RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond}
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr)}, stream.ConsumerOpts(cfg)...)
	dial := func(context.Context) (stream.Client, error) { return kgo.NewClient(opts...) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx, dial, dec, snk, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	testwait.For(t, 30*time.Second, "health to say the schema registry is failing", func() (error, bool) {
		err := h.Check()
		return err, err != nil && strings.Contains(err.Error(), "schema registry")
	})
	if n := snk.count(); n != 0 {
		t.Fatalf("%d users stored while the registry was away", n)
	}
	dec.back.Store(true)
	testwait.For(t, 30*time.Second, "500 users stored", func() (int, bool) {
		n := snk.count()
		return n, n == 500
	})
	for _, k := range []string{stream.KindDecode, stream.KindValidate, stream.KindSink} {
		if got := testutil.ToFloat64(m.DeadLettered.WithLabelValues(k)); got != 0 {
			t.Errorf("dead-lettered{kind=%s} = %v while the registry was away; want 0", k, got)
		}
	}
	if err := h.Check(); err != nil {
		t.Errorf("still unhealthy after the registry came back: %v", err)
	}
}

// TestLoneRecordIsNotHeldForBatchWait: a record that arrives alone is
// written as soon as the poll has nothing more, not after BatchWait (an
// hour here, so only adaptive batching can store it before the test's
// deadline), one after another.
func TestLoneRecordIsNotHeldForBatchWait(t *testing.T) {
	addr := newCluster(t)
	snk := newMemSink()
	start(t, addr, snk, stream.Config{BatchSize: 1000, BatchWait: time.Hour})
	for i := range 3 {
		produceUsers(t, addr, i, i+1)
		testwait.For(t, 30*time.Second, fmt.Sprintf("user %d stored alone", i), func() (int, bool) { n := snk.count(); return n, n == i+1 })
	}
}

// TestSharedInstanceIDFailsClearly: a second live worker joins with the
// first one's instance id. The broker fences the first, which stops with
// ErrInstanceIDInUse naming the id, instead of rejoining and fencing the
// other in turn; the second stores everything.
func TestSharedInstanceIDFailsClearly(t *testing.T) {
	addr := newCluster(t)
	produceUsers(t, addr, 0, 500)
	first, second := newMemSink(), newMemSink()
	cfg := stream.Config{InstanceID: "same", BatchSize: 100, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond}
	a := start(t, addr, first, cfg)
	testwait.For(t, 30*time.Second, "the first worker stores", func() (int, bool) { n := first.count(); return n, n > 0 })
	start(t, addr, second, cfg)
	select {
	case err := <-a.done:
		close(a.done)
		if !errors.Is(err, stream.ErrInstanceIDInUse) || !strings.Contains(err.Error(), `"same"`) {
			t.Fatalf("the fenced worker stopped with %v, want ErrInstanceIDInUse naming the id", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fenced worker did not stop within 30 s")
	}
	produceUsers(t, addr, 500, 1000)
	testwait.For(t, 30*time.Second, "the second worker stores what comes next", func() (int, bool) {
		return second.count(), second.has(record(999).ID)
	})
}
