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
	if cfg.Users <= 0 && cfg.Duration <= 0 {
		return Summary{}, ErrNoBound
	}
	if cfg.Topic == "" {
		cfg.Topic = broker.Topic
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchSize > MaxBatch {
		return Summary{}, fmt.Errorf("ingest: batch size %d is over the API's maximum of %d", cfg.BatchSize, MaxBatch)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.RunID == "" {
		cfg.RunID = uuid.NewString()
	}
	seed := cfg.Seed
	if seed == "" {
		seed = cfg.RunID
	}

	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, cfg.Duration)
		defer c()
	}

	var (
		fetched, produced, failed atomic.Int64
		page                      atomic.Int64
		claimed                   atomic.Int64 // users asked for so far (Users bound)
		empties                   atomic.Int64 // empty answers in a row
		errOnce                   sync.Once
		runErr                    error
	)
	fail := func(err error) {
		errOnce.Do(func() { runErr = err; cancel() })
	}
	var pace *rate.Limiter
	if cfg.Rate > 0 {
		// No request asks for more than a second's worth of users, so a
		// slow rate is kept request by request (and a timed run is not cut
		// short waiting for a batch it has no time left for); the bucket
		// holds one batch, so a run starts at once.
		cfg.BatchSize = max(1, min(cfg.BatchSize, int(math.Ceil(cfg.Rate))))
		pace = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.BatchSize)
	}
	summary := func() Summary {
		return Summary{RunID: cfg.RunID, Fetched: fetched.Load(), Produced: produced.Load(),
			Failed: failed.Load(), Elapsed: time.Since(start)}
	}
	headers := func(fetchedAt time.Time) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: HeaderRunID, Value: []byte(cfg.RunID)},
			{Key: HeaderSource, Value: []byte(cfg.SourceName)},
			{Key: HeaderFetchedAt, Value: []byte(fetchedAt.UTC().Format(time.RFC3339Nano))},
		}
	}

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for runCtx.Err() == nil {
				n := cfg.BatchSize
				if cfg.Users > 0 {
					// Claim the next slice of the count so workers never overshoot.
					end := claimed.Add(int64(n))
					if over := end - int64(cfg.Users); over > 0 {
						// Give back what lies past the count: a short answer
						// below may return some to claim again.
						claimed.Add(-min(over, int64(n)))
						n -= int(over)
						if n <= 0 {
							return
						}
					}
				}
				if pace != nil && pace.WaitN(runCtx, n) != nil {
					return
				}
				p := randomuser.Params{Results: n, Seed: seed, Page: int(page.Add(1)), Nat: cfg.Nat}
				resp, err := src.Get(runCtx, p)
				if err != nil {
					if runCtx.Err() != nil {
						return
					}
					failed.Add(int64(n))
					fail(fmt.Errorf("ingest: fetching page %d of seed %q: %w", p.Page, seed, err))
					return
				}
				if short := n - len(resp.Results); short > 0 && cfg.Users > 0 {
					// Ask again for what this answer lacked.
					claimed.Add(-int64(max(short, 0)))
				}
				if len(resp.Results) == 0 {
					e := empties.Add(1)
					if e >= MaxEmpty {
						fail(fmt.Errorf("ingest: %w: %d answers in a row without users (last: page %d of seed %q)", ErrNoUsers, e, p.Page, seed))
						return
					}
					t := time.NewTimer(emptyBackoff << (e - 1))
					select {
					case <-runCtx.Done():
						t.Stop()
						return
					case <-t.C:
					}
					continue
				}
				empties.Store(0)
				now := time.Now()
				fetched.Add(int64(len(resp.Results)))
				hdrs := headers(now)
				for _, u := range resp.Results {
					r := FromAPI(u, now, cfg.RunID)
					val, err := enc.Encode(r)
					if err != nil {
						failed.Add(1)
						fail(fmt.Errorf("ingest: encoding user %s: %w", r.ID, err))
						return
					}
					// The run's context may be cancelled by the time bound;
					// records already fetched are still produced.
					prod.Produce(context.WithoutCancel(ctx), &kgo.Record{
						Topic: cfg.Topic, Key: []byte(r.ID), Value: val, Headers: hdrs,
					}, func(_ *kgo.Record, err error) {
						if err != nil {
							failed.Add(1)
							if errors.Is(err, kerr.MessageTooLarge) {
								err = fmt.Errorf("%w: user %s is %d bytes, over the topic's max.message.bytes "+
									"(1048588 bytes on the embedded broker and by Kafka's default; raise the topic's max.message.bytes)",
									err, r.ID, len(val))
							}
							fail(fmt.Errorf("ingest: producing to %s: %w", cfg.Topic, err))
							return
						}
						produced.Add(1)
					})
				}
				if cfg.Progress != nil {
					cfg.Progress(summary())
				}
			}
		})
	}
	wg.Wait()
	// Flush with the caller's context: a deadline on the run must not cut
	// off acknowledgements of records already handed to the producer.
	if err := prod.Flush(ctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("ingest: flushing to %s: %w", cfg.Topic, err)
	}
	s := summary()
	if cfg.Progress != nil {
		cfg.Progress(s)
	}
	if runErr == nil && ctx.Err() == nil && cfg.Users > 0 && cfg.Duration == 0 && s.Produced < int64(cfg.Users) {
		runErr = fmt.Errorf("ingest: produced %d of %d users", s.Produced, cfg.Users)
	}
	if runErr == nil && ctx.Err() == nil && s.Produced == 0 {
		runErr = fmt.Errorf("ingest: %w in %s: nothing produced", ErrNoUsers, s.Elapsed.Round(time.Millisecond))
	}
	return s, runErr
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
