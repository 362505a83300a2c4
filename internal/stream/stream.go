// Package stream is the Spark job's role: a consumer group reads
// users_created, decodes and validates each message, upserts batches into a
// sink, and only then commits the batch's offsets. Messages that cannot be
// decoded or fail validation go to the dead-letter topic with headers saying
// why and where they came from; the stream goes on.
//
// Offsets are never committed past records the sink does not have (or the
// dead-letter topic has not acknowledged), and sinks upsert by id, so a crash
// at any point replays at most one batch and never loses or duplicates a
// user.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/user"
)

// Decoder turns a message value into a record: an Avro serde (which also
// reads plain JSON) or user.JSON{}.
type Decoder interface {
	Decode(b []byte) (user.Record, error)
}

// Sink is where batches land; every sink.Sink is one.
type Sink interface {
	Upsert(ctx context.Context, batch []user.Record) error
}

// Headers set on dead letters.
const (
	HeaderError     = "userstream.error"
	HeaderErrorKind = "userstream.error_kind" // "decode" or "validate"
	HeaderTopic     = "userstream.source_topic"
	HeaderPartition = "userstream.source_partition"
	HeaderOffset    = "userstream.source_offset"
	HeaderFailedAt  = "userstream.failed_at"
)

// Defaults.
const (
	DefaultGroup     = "userstream-stream"
	DefaultTopic     = "users_created"
	DefaultDLQ       = "users_created.dlq"
	DefaultBatchSize = 1000
	DefaultBatchWait = 100 * time.Millisecond
)

// Config says how a stream runs.
type Config struct {
	Topic     string        // default users_created
	DLQ       string        // default users_created.dlq
	Group     string        // default userstream-stream
	BatchSize int           // most records per sink write; default 1000
	BatchWait time.Duration // longest a partial batch waits; default 100ms
	// RetryMin and RetryMax bound the backoff between sink retries;
	// defaults 100ms and 10s. A failing sink is retried until it works or
	// the stream is stopped: nothing is dropped.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds finishing the batch in hand after the stream
	// is asked to stop; default 30s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	Metrics         *Metrics
	// AfterStore, when set, runs after the sink has a batch and before its
	// offsets are committed. Returning an error stops the stream there
	// without committing: crash tests use it to die at the worst moment.
	AfterStore func(ctx context.Context, batch []user.Record) error
}

func (c *Config) defaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.DLQ == "" {
		c.DLQ = DefaultDLQ
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ConsumerOpts are the kgo options a stream's client must be built with: the
// group, cooperative-sticky balancing, a new group starting from the earliest
// offset, manual commits, and no rebalance while a batch is in hand.
func ConsumerOpts(cfg Config) []kgo.Opt {
	cfg.defaults()
	return []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(cfg.BatchWait),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
}

// Client is the part of *kgo.Client a stream uses. It must be built with
// ConsumerOpts.
type Client interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	AllowRebalance()
	CommitRecords(ctx context.Context, rs ...*kgo.Record) error
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Run consumes until ctx is cancelled or a fatal error happens. On
// cancellation it finishes the batches in hand (store, commit) within
// cfg.ShutdownTimeout and returns nil; the caller then closes the client,
// which leaves the group.
//
// Run is a two-stage pipeline: while one batch is written to the sink and
// committed, the next is polled and decoded. Batches are written and
// committed in order by one goroutine, so a batch's offsets are committed
// only after it and every batch before it are stored. Rebalances are let
// through only when no batch is in hand, at least every rebalanceEvery.
func Run(ctx context.Context, cl Client, dec Decoder, snk Sink, cfg Config) error {
	cfg.defaults()
	// The writer finishes what it was given even when ctx is cancelled,
	// for at most ShutdownTimeout.
	wctx, cancelWriter := finishCtx(ctx, cfg.ShutdownTimeout)
	defer cancelWriter()
	work := make(chan *batch, 1)
	results := make(chan error, 2)
	go write(wctx, cl, snk, cfg, work, results)

	pending := 0 // batches handed to the writer and not yet reported
	var failed error
	collect := func(block bool) {
		for pending > 0 {
			var err error
			if block {
				err = <-results
			} else {
				select {
				case err = <-results:
				default:
					return
				}
			}
			pending--
			if err != nil && failed == nil {
				failed = err
			}
		}
	}
	finish := func() error {
		close(work)
		collect(true)
		cl.AllowRebalance()
		return failed
	}
	lastAllowed := time.Now()
	for {
		collect(false)
		if failed != nil || ctx.Err() != nil {
			return finish()
		}
		if pending == 0 || time.Since(lastAllowed) > rebalanceEvery {
			// Nothing in hand once the writer is done: let a waiting
			// rebalance through.
			collect(true)
			if failed != nil {
				return finish()
			}
			cl.AllowRebalance()
			lastAllowed = time.Now()
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if pending > 0 {
			// Polling ahead holds rebalances: bound the wait so an idle
			// topic does not hold them for long.
			pctx, cancel = context.WithTimeout(ctx, cfg.BatchWait)
		}
		recs, err := poll(pctx, cl, cfg)
		cancel()
		if err != nil && ctx.Err() == nil && pctx.Err() == nil {
			failed = err
		}
		if len(recs) > 0 {
			work <- decode(dec, cfg, recs)
			pending++
		}
	}
}

// rebalanceEvery bounds how long a busy pipeline holds a rebalance.
const rebalanceEvery = 500 * time.Millisecond

// batch is one poll's records, decoded: the good users, the dead letters,
// and every record, whose offsets are committed once the rest is stored.
type batch struct {
	recs []*kgo.Record
	good []user.Record
	dead []*kgo.Record
}

// decode splits records into users to store and dead letters.
func decode(dec Decoder, cfg Config, recs []*kgo.Record) *batch {
	b := &batch{recs: recs, good: make([]user.Record, 0, len(recs))}
	for _, r := range recs {
		u, err := dec.Decode(r.Value)
		kind := "decode"
		if err == nil {
			if err = u.Validate(); err != nil {
				kind = "validate"
			}
		}
		if err != nil {
			b.dead = append(b.dead, deadLetter(cfg.DLQ, r, kind, err))
			continue
		}
		b.good = append(b.good, u)
	}
	return b
}

// write stores and commits batches in order and reports each on results.
// After the first failure it stores nothing more: later batches are
// reported failed too, so no offset passes a batch the sink does not have.
func write(ctx context.Context, cl Client, snk Sink, cfg Config, work <-chan *batch, results chan<- error) {
	var failed error
	for b := range work {
		if failed == nil {
			failed = store(ctx, cl, snk, cfg, b)
		}
		results <- failed
	}
}

// finishCtx returns a context that outlives ctx's cancellation by at most
// grace, so a batch in hand can be stored and committed on shutdown.
func finishCtx(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	return work, func() { stop(); cancel() }
}

// poll gathers up to BatchSize records, waiting at most BatchWait after the
// first one arrives.
func poll(ctx context.Context, cl Client, cfg Config) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	var deadline time.Time
	for len(recs) < cfg.BatchSize {
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				break
			}
			pctx, cancel = context.WithTimeout(ctx, d)
		}
		fs := cl.PollRecords(pctx, cfg.BatchSize-len(recs))
		timedOut := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if ferr == nil {
				ferr = fmt.Errorf("stream: fetching %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			if errors.Is(ferr, kgo.ErrClientClosed) {
				return recs, ferr
			}
			cfg.Logger.Warn("fetch error; the client retries", "err", ferr)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if ctx.Err() != nil {
			return recs, ctx.Err()
		}
		if len(recs) == 0 {
			// A poll that returned only errors still blocks rebalances;
			// with nothing in hand, let them through before waiting again.
			cl.AllowRebalance()
		}
		if timedOut {
			break
		}
		if len(recs) > 0 && deadline.IsZero() {
			deadline = time.Now().Add(cfg.BatchWait)
		}
	}
	return recs, nil
}

// store writes one batch's dead letters and users, then commits its
// offsets.
func store(ctx context.Context, cl Client, snk Sink, cfg Config, b *batch) error {
	m := cfg.Metrics
	start := time.Now()
	if len(b.dead) > 0 {
		// Dead letters must be acknowledged before the offsets move past
		// them; ProduceSync retries internally, and we retry the call.
		if err := retry(ctx, cfg, "dead-letter produce", func() error {
			return cl.ProduceSync(ctx, b.dead...).FirstErr()
		}); err != nil {
			return err
		}
		for _, d := range b.dead {
			cfg.Logger.Warn("dead-lettered a message", "topic", cfg.Topic,
				"partition", header(d, HeaderPartition), "offset", header(d, HeaderOffset),
				"kind", header(d, HeaderErrorKind), "error", header(d, HeaderError))
			if m != nil {
				m.DeadLettered.WithLabelValues(header(d, HeaderErrorKind)).Inc()
			}
		}
	}
	if len(b.good) > 0 {
		if err := retry(ctx, cfg, "sink upsert", func() error { return snk.Upsert(ctx, b.good) }); err != nil {
			return err
		}
		if m != nil {
			m.Stored.Add(float64(len(b.good)))
		}
	}
	if cfg.AfterStore != nil {
		if err := cfg.AfterStore(ctx, b.good); err != nil {
			return err
		}
	}
	if err := retry(ctx, cfg, "offset commit", func() error { return cl.CommitRecords(ctx, b.recs...) }); err != nil {
		return err
	}
	if m != nil {
		m.BatchSeconds.Observe(time.Since(start).Seconds())
		m.Committed.Add(float64(len(b.recs)))
		m.Consumed.Add(float64(len(b.recs)))
	}
	cfg.Logger.Debug("batch committed", "records", len(b.recs), "stored", len(b.good), "dead", len(b.dead))
	return nil
}

// retry runs op until it succeeds or ctx ends, with jittered exponential
// backoff between RetryMin and RetryMax. It never gives up on its own: a
// stopped stream replays the batch, a dropped one would lose it.
func retry(ctx context.Context, cfg Config, what string, op func() error) error {
	wait := cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			if attempt > 1 {
				cfg.Logger.Info(what+" recovered", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stream: %s stopped after %d attempts: %w", what, attempt, err)
		}
		if cfg.Metrics != nil {
			cfg.Metrics.Retries.WithLabelValues(what).Inc()
		}
		cfg.Logger.Warn(what+" failed; retrying", "attempt", attempt, "backoff", wait, "err", err)
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stream: %s stopped after %d attempts: %w", what, attempt, err)
		case <-t.C:
		}
		wait = min(wait*2, cfg.RetryMax)
	}
}

func deadLetter(topic string, r *kgo.Record, kind string, err error) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	h = append(h, r.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(err.Error())},
		kgo.RecordHeader{Key: HeaderErrorKind, Value: []byte(kind)},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: h}
}

func header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// Metrics are the stream's Prometheus metrics. Register them with
// NewMetrics on a registry of the caller's (no global registry).
type Metrics struct {
	Consumed     prometheus.Counter
	Stored       prometheus.Counter
	Committed    prometheus.Counter
	DeadLettered *prometheus.CounterVec
	Retries      *prometheus.CounterVec
	BatchSeconds prometheus.Histogram
	Lag          prometheus.Gauge
}

// NewMetrics creates the stream metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_consumed_total", Help: "Messages consumed and committed."}),
		Stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_stored_total", Help: "Users upserted into the sink (replays count again)."}),
		Committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_committed_total", Help: "Offsets committed, in messages."}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userstream_stream_dead_lettered_total", Help: "Messages sent to the dead-letter topic, by kind (decode, validate)."},
			[]string{"kind"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userstream_stream_retries_total", Help: "Retried operations, by operation."}, []string{"op"}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "userstream_stream_batch_seconds", Help: "Time to store and commit one batch (dead letters, sink, commit).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "userstream_stream_lag", Help: "Messages in users_created not yet committed by the group."}),
	}
	reg.MustRegister(m.Consumed, m.Stored, m.Committed, m.DeadLettered, m.Retries, m.BatchSeconds, m.Lag)
	return m
}
