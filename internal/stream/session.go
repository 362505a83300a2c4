package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// groupMovedErrs are the commit errors after which this member's
// generation is gone for good. FENCED_INSTANCE_ID is not one of them: it
// means another live member took this one's instance id (fenced).
var groupMovedErrs = []error{
	kerr.IllegalGeneration, kerr.UnknownMemberID, kerr.RebalanceInProgress,
	kerr.FencedMemberEpoch, kerr.StaleMemberEpoch,
}

// runSession is one client's life in the group: a three-stage pipeline in
// which, while one batch's offsets are committed, the next is written to
// the sink and the one after is polled and decoded. Batches are written in
// order by one goroutine and committed in order by another, which gets each
// only once it is stored, so a batch's offsets are committed only after it
// and every batch before it are stored. Rebalances are let through only
// when no batch is in hand: whenever the writer is done with every batch,
// and, while batches keep coming, as soon as one waits (rebalance.go).
func runSession(ctx context.Context, cl Client, dec Decoder, snk Sink, cfg Config) error {
	// The writer finishes what it was given even when ctx is cancelled,
	// for at most ShutdownTimeout.
	wctx, cancelWriter := finishCtx(ctx, cfg.ShutdownTimeout)
	defer cancelWriter()
	work := make(chan *batch, 1)
	stored := make(chan storedBatch, 1)
	// Room for every batch in flight (in work, being written, in stored,
	// being committed, and the one the poller holds), so the committer
	// never waits on the poller.
	results := make(chan error, 8)
	var stop atomic.Bool // set by the committer's failure: write no more
	go write(wctx, cl, snk, cfg, work, stored, &stop)
	go commit(wctx, cl, cfg, stored, results, &stop)

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
	waits, allowed := rebalanceWaits(cl)
	for {
		collect(false)
		if failed != nil || ctx.Err() != nil {
			return finish()
		}
		if pending == 0 || waits() {
			// Nothing in hand once the writer is done: let a waiting
			// rebalance through.
			collect(true)
			if failed != nil {
				return finish()
			}
			allowed()
			cl.AllowRebalance()
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if pending > 0 {
			// Polling ahead holds rebalances: bound the wait so an idle
			// topic does not hold them for long.
			pctx, cancel = context.WithTimeout(ctx, cfg.BatchWait)
		}
		recs, err := poll(pctx, cl, cfg, func() bool { collect(false); return pending > 0 })
		cancel()
		if err != nil && ctx.Err() == nil && pctx.Err() == nil {
			failed = err
		}
		if len(recs) > 0 {
			b, err := decode(ctx, dec, cfg, recs)
			if err != nil {
				// Stopped while the registry was away: nothing of this
				// batch is stored or committed.
				if failed == nil && ctx.Err() == nil {
					failed = err
				}
				continue
			}
			work <- b
			pending++
		} else if cfg.Health != nil && pending == 0 && failed == nil {
			cfg.Health.idle()
		}
	}
}

// batch is one poll's records, decoded: the good users beside the records
// they came from, the dead letters, and every record, whose offsets are
// committed once the rest is stored.
type batch struct {
	recs    []*kgo.Record
	good    []user.Record
	goodSrc []*kgo.Record
	dead    []*kgo.Record
}

// decode splits records into users to store and dead letters. A record
// whose writer schema cannot be fetched because the registry is away is not
// a dead letter: decode waits for the registry (with backoff, marking the
// stream unhealthy while it lasts) and returns an error only when ctx ends.
func decode(ctx context.Context, dec Decoder, cfg Config, recs []*kgo.Record) (*batch, error) {
	b := &batch{recs: recs, good: make([]user.Record, 0, len(recs)), goodSrc: make([]*kgo.Record, 0, len(recs))}
	for _, r := range recs {
		var u user.Record
		err := retry(ctx, cfg, "schema registry", func(context.Context) error {
			var err error
			u, err = dec.Decode(r.Value)
			if err != nil && !errors.Is(err, schema.ErrRegistryUnavailable) {
				return permanent{err}
			}
			return err
		})
		var p permanent
		if errors.As(err, &p) {
			err = p.err
		} else if err != nil {
			return nil, err
		}
		kind := KindDecode
		if err == nil {
			if err = u.Validate(); err != nil {
				kind = KindValidate
			}
		}
		if err != nil {
			b.dead = append(b.dead, deadLetter(cfg.DLQ, r, kind, err))
			continue
		}
		b.good = append(b.good, u)
		b.goodSrc = append(b.goodSrc, r)
	}
	return b, nil
}

// permanent marks an error retry must not retry.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// storedBatch is a batch the writer is done with: stored, or err.
type storedBatch struct {
	b     *batch
	start time.Time
	err   error
}

// write stores batches in order and hands each to the committer. After
// the first failure, its own or the committer's (stop), it stores nothing
// more: later batches are handed on failed, so no offset passes a batch the
// sink does not have.
func write(ctx context.Context, cl Client, snk Sink, cfg Config, work <-chan *batch, stored chan<- storedBatch, stop *atomic.Bool) {
	defer close(stored)
	var failed error
	for b := range work {
		start := time.Now()
		if failed == nil && !stop.Load() {
			failed = store(ctx, cl, snk, cfg, b)
		}
		stored <- storedBatch{b: b, start: start, err: cmp.Or(failed, errStopped(stop))}
	}
}

// errStopped is the error of a batch left unwritten after the committer
// failed: the session ends with the committer's error, not this one.
func errStopped(stop *atomic.Bool) error {
	if stop.Load() {
		return errCommitFailed
	}
	return nil
}

var errCommitFailed = errors.New("stream: not written: an earlier commit failed")

// commit commits stored batches' offsets in order and reports each on
// results; after the first failure it commits nothing more.
func commit(ctx context.Context, cl Client, cfg Config, stored <-chan storedBatch, results chan<- error, stop *atomic.Bool) {
	var failed error
	for sb := range stored {
		if failed == nil {
			failed = sb.err
		}
		if failed == nil {
			failed = commitBatch(ctx, cl, cfg, sb.b, sb.start)
			if failed != nil {
				stop.Store(true)
			}
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

// poll gathers up to BatchSize records (adaptive batching). It waits as
// long as it takes for a first record; then it takes what the client has
// already fetched and, if the writer is idle (busy reports false), returns
// at once: a lone record goes to the sink without waiting for company.
// While the writer is still busy with the previous batch, poll keeps
// gathering, up to BatchWait after the first record, since the batch could
// not be written sooner anyway: batches grow when the sink is the
// bottleneck and shrink to what arrives when it is not.
func poll(ctx context.Context, cl Client, cfg Config, busy func() bool) ([]*kgo.Record, error) {
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
			if !busy() {
				// Only what is buffered: PollRecords on a done context
				// returns it without waiting.
				var done context.Context
				done, cancel = context.WithCancel(ctx)
				cancel()
				pctx = done
			} else {
				pctx, cancel = context.WithTimeout(ctx, min(d, busyPoll))
			}
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
			if errors.Is(ferr, kerr.FencedInstanceID) {
				return recs, fenced(cfg, ferr)
			}
			cfg.Logger.Warn("fetch error; the client retries", "err", ferr)
			cfg.Health.Failing("fetch", ferr)
		} else if cfg.Health != nil && (len(fs) > 0 || timedOut) {
			cfg.Health.Recovered("fetch")
		}
		n := len(recs)
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if ctx.Err() != nil {
			return recs, ctx.Err()
		}
		if len(recs) == 0 {
			// A poll that returned only errors still blocks rebalances;
			// with nothing in hand, let them through before waiting again.
			cl.AllowRebalance()
		}
		if deadline.IsZero() {
			if timedOut {
				break // the caller's bound, with nothing in hand
			}
			if len(recs) > 0 {
				deadline = time.Now().Add(cfg.BatchWait)
			}
			continue
		}
		if len(recs) == n && !busy() {
			break // nothing more buffered and the writer is free
		}
	}
	return recs, nil
}

// busyPoll is how long one poll waits for more records while the writer is
// busy, before poll looks again whether it has become free.
const busyPoll = 2 * time.Millisecond

// store writes one batch's dead letters and users. Records the sink
// refuses as data (sink.ErrRejected) are found by splitting the batch and
// become dead letters of kind "sink" before the commit.
func store(ctx context.Context, cl Client, snk Sink, cfg Config, b *batch) error {
	m := cfg.Metrics
	if err := produceDead(ctx, cl, cfg, b.dead); err != nil {
		return err
	}
	if len(b.good) > 0 {
		refused, err := upsert(ctx, snk, cfg, b.good, b.goodSrc)
		if err != nil {
			return err
		}
		if err := produceDead(ctx, cl, cfg, refused); err != nil {
			return err
		}
		if m != nil {
			m.Stored.Add(float64(len(b.good) - len(refused)))
			now := time.Now()
			for _, u := range b.good {
				if !u.IngestedAt.IsZero() {
					m.Latency.Observe(now.Sub(u.IngestedAt).Seconds())
				}
			}
		}
	}
	if cfg.AfterStore != nil {
		if err := cfg.AfterStore(ctx, b.good); err != nil {
			return err
		}
	}
	return nil
}

// commitBatch commits a stored batch's offsets; start is when its store
// began, for the batch duration metric.
func commitBatch(ctx context.Context, cl Client, cfg Config, b *batch, start time.Time) error {
	m := cfg.Metrics
	err := retry(ctx, cfg, "offset commit", func(ctx context.Context) error {
		err := cl.CommitRecords(ctx, b.recs...)
		switch {
		case errors.Is(err, kerr.FencedInstanceID):
			return permanent{fenced(cfg, err)}
		case groupMoved(err):
			return permanent{wrapGroupMoved(err)}
		}
		return err
	})
	if err != nil {
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		return err
	}
	if m != nil {
		m.BatchSeconds.Observe(time.Since(start).Seconds())
		m.Committed.Add(float64(len(b.recs)))
		m.Consumed.Add(float64(len(b.recs)))
	}
	cfg.Health.progress()
	cfg.Logger.Debug("batch committed", "records", len(b.recs), "stored", len(b.good), "dead", len(b.dead))
	return nil
}

// produceDead writes dead letters and waits for their acknowledgement: the
// offsets must not move past them before.
func produceDead(ctx context.Context, cl Client, cfg Config, dead []*kgo.Record) error {
	if cfg.DeadLetter != nil {
		kept := make([]*kgo.Record, 0, len(dead))
		for _, d := range dead {
			r, err := cfg.DeadLetter(d)
			if err != nil {
				return err
			}
			if r != nil {
				kept = append(kept, r)
			}
		}
		dead = kept
	}
	if len(dead) == 0 {
		return nil
	}
	if err := retry(ctx, cfg, "dead-letter produce", func(ctx context.Context) error {
		return cl.ProduceSync(ctx, dead...).FirstErr()
	}); err != nil {
		return err
	}
	for _, d := range dead {
		cfg.Logger.Warn("dead-lettered a message", "topic", cfg.Topic,
			"partition", header(d, HeaderPartition), "offset", header(d, HeaderOffset),
			"kind", header(d, HeaderErrorKind), "error", header(d, HeaderError))
		if cfg.Metrics != nil {
			cfg.Metrics.DeadLettered.WithLabelValues(header(d, HeaderErrorKind)).Inc()
		}
	}
	return nil
}

// dataError reports whether a sink error is about the records, not the
// backend.
func dataError(err error) bool {
	return errors.Is(err, sink.ErrRejected) || errors.Is(err, user.ErrInvalid)
}

// upsert writes recs, retrying backend failures until they pass. When the
// sink refuses the data, the batch is split in halves and each half written
// on its own, down to single records: a refused record becomes a dead
// letter of kind "sink" (its source record src[i]) and the rest are stored.
// A batch with k bad records costs about 2k·log2(n) extra writes.
func upsert(ctx context.Context, snk Sink, cfg Config, recs []user.Record, src []*kgo.Record) ([]*kgo.Record, error) {
	err := retry(ctx, cfg, "sink upsert", func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, cfg.WriteTimeout)
		defer cancel()
		err := snk.Upsert(wctx, recs)
		if err != nil && ctx.Err() == nil && wctx.Err() != nil {
			err = fmt.Errorf("sink write took longer than %s: %w", cfg.WriteTimeout, err)
		}
		if dataError(err) {
			return permanent{err}
		}
		return err
	})
	var p permanent
	if !errors.As(err, &p) {
		return nil, err
	}
	if len(recs) == 1 {
		reason := p.err.Error()
		var rj *sink.RejectedError
		if errors.As(p.err, &rj) && rj.Reason != "" {
			reason = rj.Reason
		}
		return []*kgo.Record{deadLetter(cfg.DLQ, src[0], KindSink, errors.New(reason))}, nil
	}
	cfg.Logger.Info("the sink refused a batch as data; splitting it to find the records at fault", "records", len(recs), "err", p.err)
	half := len(recs) / 2
	left, err := upsert(ctx, snk, cfg, recs[:half], src[:half])
	if err != nil {
		return nil, err
	}
	right, err := upsert(ctx, snk, cfg, recs[half:], src[half:])
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// retry runs op until it succeeds, returns a permanent error, or ctx ends,
// with jittered exponential backoff between RetryMin and RetryMax. It never
// gives up on its own: a stopped stream replays the batch, a dropped one
// would lose it. While op fails, Health says so under the name what.
func retry(ctx context.Context, cfg Config, what string, op func(context.Context) error) error {
	wait := cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		var p permanent
		if err == nil || errors.As(err, &p) {
			if attempt > 1 && err == nil {
				cfg.Logger.Info(what+" recovered", "attempts", attempt)
			}
			cfg.Health.Recovered(what)
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stream: %s stopped after %d attempts: %w", what, attempt, err)
		}
		cfg.Health.Failing(what, err)
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
