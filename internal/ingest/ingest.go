// Package ingest is the original DAG task, done right: users fetched from a
// Random User source, mapped to records, produced to Kafka keyed by id.
//
// Batches are fetched concurrently and produced idempotently and
// compressed; a run flushes before it reports.
//
// A run stops when it has produced the asked number of users or its duration
// is over. When the source fails past the client's retries the run fails with
// that error and an honest partial count: it never skips a batch silently.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/user"
)

// Source is where users come from: *randomuser.Client for randomuser.me or
// any compatible server.
type Source interface {
	Get(ctx context.Context, p randomuser.Params) (randomuser.Response, error)
}

// Encoder turns a record into a message value: user.JSON{} or an Avro serde.
type Encoder interface {
	Encode(r user.Record) ([]byte, error)
}

// Producer is the part of *kgo.Client a run uses.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	Flush(ctx context.Context) error
}

// Header keys set on every produced message.
const (
	HeaderRunID     = "userstream.run_id"
	HeaderSource    = "userstream.source"
	HeaderFetchedAt = "userstream.fetched_at"
)

// MaxBatch is the most users one API request may ask for.
const MaxBatch = 5000

// Config says what one run does. Users or Duration (or both) bound it.
type Config struct {
	// Topic to produce to; default broker.Topic.
	Topic string
	// Users is how many users to produce; 0 means no count limit.
	Users int
	// Duration bounds the run; 0 means no time limit.
	Duration time.Duration
	// BatchSize is the results per request, 1..5000; default 500.
	BatchSize int
	// Concurrency is the number of requests in flight; default 2.
	Concurrency int
	// Rate caps users fetched per second; 0 means as fast as the source
	// allows.
	Rate float64
	// Seed makes a run repeatable: requests use this seed with pages 1, 2,
	// ... Empty means a fresh seed per run, so runs do not repeat users.
	Seed string
	// Nat restricts nationalities (e.g. ["fr","gb"]); empty means all.
	Nat []string
	// RunID names the run in headers and records; default a new UUID.
	RunID string
	// SourceName is written in the source header (the source URL without
	// secrets, or "builtin").
	SourceName string
	// Progress, when set, is called after every batch with running totals.
	Progress func(Summary)
}

// Summary is what a run did. It is honest on failure: Produced counts only
// messages the broker acknowledged.
type Summary struct {
	RunID    string
	Fetched  int64
	Produced int64
	Failed   int64
	Elapsed  time.Duration
}

// UsersPerSecond is the produced rate over the run.
func (s Summary) UsersPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Produced) / s.Elapsed.Seconds()
}

// String is the one-line summary printed at the end of a run.
func (s Summary) String() string {
	return fmt.Sprintf("run %s: fetched %d, produced %d, failed %d in %s (%.0f users/s)",
		s.RunID, s.Fetched, s.Produced, s.Failed, s.Elapsed.Round(time.Millisecond), s.UsersPerSecond())
}

// ErrNoBound is returned when neither Users nor Duration limits a run.
var ErrNoBound = errors.New("ingest: a run needs a user count or a duration")

// ErrNoUsers is matched by the error of a run whose source kept answering
// with no users: MaxEmpty answers in a row, each after a longer back-off,
// or a whole timed run that produced nothing.
var ErrNoUsers = errors.New("the source returned no users")

// MaxEmpty is how many empty answers in a row fail a run.
const MaxEmpty = 5

// emptyBackoff is the first wait after an empty answer; it doubles.
const emptyBackoff = 200 * time.Millisecond

// Run fetches, maps and produces until cfg's bound is reached, ctx is
// cancelled, or something fails; it always flushes before returning, and the
// returned Summary counts what was acknowledged. Cancelling ctx ends the run
// early without an error (a stopped run is not a failed one).
func Run(ctx context.Context, src Source, prod Producer, enc Encoder, cfg Config) (Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	r := &run{ctx: ctx, src: src, prod: prod, enc: enc, cfg: cfg, seed: cmp.Or(cfg.Seed, cfg.RunID), start: time.Now()}
	r.runCtx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	if cfg.Duration > 0 {
		var c context.CancelFunc
		r.runCtx, c = context.WithTimeout(r.runCtx, cfg.Duration)
		defer c()
	}
	if cfg.Rate > 0 {
		// No request asks for more than a second's worth of users, so a
		// slow rate is kept request by request (and a timed run is not cut
		// short waiting for a batch it has no time left for); the bucket
		// holds one batch, so a run starts at once.
		r.cfg.BatchSize = max(1, min(cfg.BatchSize, int(math.Ceil(cfg.Rate))))
		r.pace = rate.NewLimiter(rate.Limit(cfg.Rate), r.cfg.BatchSize)
	}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(r.work)
	}
	wg.Wait()
	return r.finish()
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Users <= 0 && cfg.Duration <= 0 {
		return cfg, ErrNoBound
	}
	if cfg.BatchSize > MaxBatch {
		return cfg, fmt.Errorf("ingest: batch size %d is over the API's maximum of %d", cfg.BatchSize, MaxBatch)
	}
	cfg.Topic = cmp.Or(cfg.Topic, broker.Topic)
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.RunID == "" {
		cfg.RunID = uuid.NewString()
	}
	return cfg, nil
}

// run is one Run in progress, shared by its cfg.Concurrency workers.
type run struct {
	ctx    context.Context // the caller's: produce and flush
	runCtx context.Context // ends at the bound, a failure or ctx's end
	cancel context.CancelFunc
	src    Source
	prod   Producer
	enc    Encoder
	cfg    Config
	seed   string
	start  time.Time
	pace   *rate.Limiter // nil: no rate cap

	fetched, produced, failed atomic.Int64
	page                      atomic.Int64
	claimed                   atomic.Int64 // users asked for so far (Users bound)
	empties                   atomic.Int64 // empty answers in a row

	errOnce sync.Once
	err     error
}

// fail ends the run with err, the first failure winning.
func (r *run) fail(err error) {
	r.errOnce.Do(func() { r.err = err; r.cancel() })
}

func (r *run) summary() Summary {
	return Summary{RunID: r.cfg.RunID, Fetched: r.fetched.Load(), Produced: r.produced.Load(),
		Failed: r.failed.Load(), Elapsed: time.Since(r.start)}
}

func (r *run) headers(fetchedAt time.Time) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: HeaderRunID, Value: []byte(r.cfg.RunID)},
		{Key: HeaderSource, Value: []byte(r.cfg.SourceName)},
		{Key: HeaderFetchedAt, Value: []byte(fetchedAt.UTC().Format(time.RFC3339Nano))},
	}
}

// work is one worker: batch after batch until the run ends.
func (r *run) work() {
	for r.runCtx.Err() == nil {
		if !r.batch() {
			return
		}
	}
}

// claim takes the size of the next request: a batch, or less where the
// Users bound is near; ok is false once the count is all claimed.
func (r *run) claim() (n int, ok bool) {
	n = r.cfg.BatchSize
	if r.cfg.Users <= 0 {
		return n, true
	}
	// Claim the next slice of the count so workers never overshoot.
	end := r.claimed.Add(int64(n))
	if over := end - int64(r.cfg.Users); over > 0 {
		// Give back what lies past the count: a short answer may return
		// some to claim again.
		r.claimed.Add(-min(over, int64(n)))
		n -= int(over)
	}
	return n, n > 0
}

// batch fetches one page and hands its users to the producer; false ends
// the worker (the count is claimed, the run is over, or it failed).
func (r *run) batch() bool {
	n, ok := r.claim()
	if !ok {
		return false
	}
	if r.pace != nil && r.pace.WaitN(r.runCtx, n) != nil {
		return false
	}
	p := randomuser.Params{Results: n, Seed: r.seed, Page: int(r.page.Add(1)), Nat: r.cfg.Nat}
	resp, err := r.src.Get(r.runCtx, p)
	if err != nil {
		if r.runCtx.Err() == nil {
			r.failed.Add(int64(n))
			r.fail(fmt.Errorf("ingest: fetching page %d of seed %q: %w", p.Page, r.seed, err))
		}
		return false
	}
	if short := n - len(resp.Results); short > 0 && r.cfg.Users > 0 {
		// Ask again for what this answer lacked.
		r.claimed.Add(-int64(short))
	}
	if len(resp.Results) == 0 {
		return r.backOff(p.Page)
	}
	r.empties.Store(0)
	now := time.Now()
	r.fetched.Add(int64(len(resp.Results)))
	hdrs := r.headers(now)
	for _, u := range resp.Results {
		if !r.produce(FromAPI(u, now, r.cfg.RunID), hdrs) {
			return false
		}
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(r.summary())
	}
	return true
}

// backOff follows an empty answer to page: it waits longer after each
// one in a row and fails the run at MaxEmpty; false ends the worker.
func (r *run) backOff(page int) bool {
	e := r.empties.Add(1)
	if e >= MaxEmpty {
		r.fail(fmt.Errorf("ingest: %w: %d answers in a row without users (last: page %d of seed %q)", ErrNoUsers, e, page, r.seed))
		return false
	}
	t := time.NewTimer(emptyBackoff << (e - 1))
	defer t.Stop()
	select {
	case <-r.runCtx.Done():
		return false
	case <-t.C:
		return true
	}
}

// produce encodes rec and hands it to the producer, whose answer counts it
// as produced or failed; false (an encoding failure) ends the worker.
func (r *run) produce(rec user.Record, hdrs []kgo.RecordHeader) bool {
	val, err := r.enc.Encode(rec)
	if err != nil {
		r.failed.Add(1)
		r.fail(fmt.Errorf("ingest: encoding user %s: %w", rec.ID, err))
		return false
	}
	// The run's context may be cancelled by the time bound; records
	// already fetched are still produced.
	r.prod.Produce(context.WithoutCancel(r.ctx), &kgo.Record{
		Topic: r.cfg.Topic, Key: []byte(rec.ID), Value: val, Headers: hdrs,
	}, func(_ *kgo.Record, err error) {
		if err == nil {
			r.produced.Add(1)
			return
		}
		r.failed.Add(1)
		if errors.Is(err, kerr.MessageTooLarge) {
			err = fmt.Errorf("%w: user %s is %d bytes, over the topic's max.message.bytes "+
				"(1048588 bytes on the embedded broker and by Kafka's default; raise the topic's max.message.bytes)",
				err, rec.ID, len(val))
		}
		r.fail(fmt.Errorf("ingest: producing to %s: %w", r.cfg.Topic, err))
	})
	return true
}

// finish flushes and gives the run's summary and error: the first
// failure, else a Users bound not reached or nothing produced (unless the
// caller cancelled).
func (r *run) finish() (Summary, error) {
	// Flush with the caller's context: a deadline on the run must not cut
	// off acknowledgements of records already handed to the producer.
	if err := r.prod.Flush(r.ctx); err != nil && r.err == nil {
		r.err = fmt.Errorf("ingest: flushing to %s: %w", r.cfg.Topic, err)
	}
	s := r.summary()
	if r.cfg.Progress != nil {
		r.cfg.Progress(s)
	}
	switch {
	case r.err != nil || r.ctx.Err() != nil:
	case r.cfg.Users > 0 && r.cfg.Duration == 0 && s.Produced < int64(r.cfg.Users):
		r.err = fmt.Errorf("ingest: produced %d of %d users", s.Produced, r.cfg.Users)
	case s.Produced == 0:
		r.err = fmt.Errorf("ingest: %w in %s: nothing produced", ErrNoUsers, s.Elapsed.Round(time.Millisecond))
	}
	return s, r.err
}

// ProducerOpts are the kgo options a producer of users should run with:
// idempotent (franz-go's default with acks=all), compressed, keyed by the
// default murmur2 partitioner, and never auto-creating topics.
func ProducerOpts(topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.SnappyCompression(), kgo.NoCompression()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
	}
}
