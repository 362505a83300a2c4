// Package stream is the Spark job's role: a consumer group reads
// users_created and upserts every user into a sink, exactly once in effect.
//
// Each message is decoded and validated; batches are upserted into the sink
// and only then are their offsets committed. Messages that cannot be decoded,
// fail validation, or that the sink's backend refuses go to the dead-letter
// topic with headers saying why and where they came from; the stream goes on.
//
// Offsets are never committed past records the sink does not have (or the
// dead-letter topic has not acknowledged), and sinks upsert by id, so a crash
// at any point replays at most the batches in hand and never loses or
// duplicates a user. When the group moves on without this worker (a commit
// refused with ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID...,
// as after a broker restart or a long stall), the worker drops what it holds,
// opens a new client, rejoins and re-reads from the committed offsets.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/user"
)

// Decoder turns a message value into a record: an Avro serde (which also
// reads plain JSON) or user.JSON{}. A decode error matching
// schema.ErrRegistryUnavailable is taken as the registry being away, not the
// message being bad: the record waits and is decoded again.
type Decoder interface {
	Decode(b []byte) (user.Record, error)
}

// Sink is where batches land; every sink.Sink is one. An Upsert error
// matching sink.ErrRejected (or user.ErrInvalid) is about the data: the
// stream splits the batch, dead-letters the records the sink refuses, and
// stores the rest. Any other error is retried until it works.
type Sink interface {
	Upsert(ctx context.Context, batch []user.Record) error
}

// Headers set on dead letters.
const (
	HeaderError     = "userstream.error"
	HeaderErrorKind = "userstream.error_kind" // "decode", "validate" or "sink"
	HeaderTopic     = "userstream.source_topic"
	HeaderPartition = "userstream.source_partition"
	HeaderOffset    = "userstream.source_offset"
	HeaderFailedAt  = "userstream.failed_at"
)

// Dead-letter kinds, the values of HeaderErrorKind.
const (
	KindDecode   = "decode"   // the bytes are not a user in any format the stream reads
	KindValidate = "validate" // a user, but a field is wrong (user.Record.Validate)
	KindSink     = "sink"     // the sink's backend refused the record (sink.ErrRejected)
)

// Defaults.
const (
	DefaultGroup          = "userstream-stream"
	DefaultMetricsAddr    = "127.0.0.1:9102" // where a worker serves /metrics and /healthz
	DefaultBatchSize      = 1000
	DefaultBatchWait      = 100 * time.Millisecond
	DefaultSessionTimeout = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
)

// Config says how a stream runs.
type Config struct {
	Topic     string        // default users_created
	DLQ       string        // default users_created.dlq
	Group     string        // default userstream-stream
	BatchSize int           // most records per sink write; default 1000
	BatchWait time.Duration // longest a batch keeps growing while the writer is busy; default 100ms
	// InstanceID, when set, makes the worker a static member of the group
	// (KIP-345): a worker restarted with the same id takes its place and
	// its partitions back at once, instead of the group waiting for the old
	// member's session to time out. Two live workers must never share one.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to the others; default 10s. Under
	// GroupProtocolConsumer the broker's group.consumer.session.timeout.ms
	// applies instead.
	SessionTimeout time.Duration
	// GroupProtocol is the consumer group protocol: GroupProtocolClassic
	// (the default, client-side assignment) or GroupProtocolConsumer
	// (KIP-848, the broker assigns). A broker without KIP-848 (before
	// Kafka 4, or on ZooKeeper) gets the classic protocol either way.
	GroupProtocol string
	// RetryMin and RetryMax bound the backoff between retries of a sink
	// write, a dead-letter produce or a commit; defaults 100ms and 2s. A
	// failing sink is retried until it works or the stream is stopped:
	// nothing is dropped.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one attempt at a sink write, so that a database
	// that accepts connections and never answers fails the attempt (which
	// is retried) instead of hanging the stream; default 30s.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds finishing the batch in hand after the stream
	// is asked to stop; default 30s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	Metrics         *Metrics
	// Health, when set, is kept informed of progress and failures.
	Health *Health
	// AfterStore, when set, runs after the sink has a batch and before its
	// offsets are committed. Returning an error stops the stream there
	// without committing: crash tests use it to die at the worst moment.
	AfterStore func(ctx context.Context, batch []user.Record) error
	// DeadLetter, when set, sees each dead letter (with the headers above)
	// before it is produced and returns the record to produce instead, nil
	// to drop it, or an error, which stops the stream without committing:
	// Kafka Connect's errors.tolerance and context headers are built on it.
	DeadLetter func(dead *kgo.Record) (*kgo.Record, error)
}

func (c *Config) defaults() {
	if c.Topic == "" {
		c.Topic = broker.Topic
	}
	if c.DLQ == "" {
		c.DLQ = broker.DLQTopic
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
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ConsumerOpts are the kgo options a stream's client must be built with: the
// group (static when cfg.InstanceID is set), cooperative-sticky balancing, a
// session timeout of cfg.SessionTimeout with heartbeats every tenth of it, a
// new group starting from the earliest offset, manual commits, and no
// rebalance while a batch is in hand, with the signal by which a waiting
// rebalance reaches the session. The options are for one client at a
// time, as a Dialer dials: call ConsumerOpts again for a client that runs
// beside another.
// The consumer group protocols of Config.GroupProtocol, named as Kafka's
// group.protocol setting names them.
const (
	GroupProtocolClassic  = "classic"
	GroupProtocolConsumer = "consumer"
)

// ErrGroupProtocol is returned (wrapped) for a GroupProtocol that is neither.
var ErrGroupProtocol = errors.New("stream: unknown group protocol (want classic or consumer)")

// CheckGroupProtocol returns an error wrapping ErrGroupProtocol unless p
// is "", GroupProtocolClassic or GroupProtocolConsumer.
func CheckGroupProtocol(p string) error {
	switch p {
	case "", GroupProtocolClassic, GroupProtocolConsumer:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrGroupProtocol, p)
}

func ConsumerOpts(cfg Config) []kgo.Opt {
	cfg.defaults()
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(cfg.SessionTimeout/10, 100*time.Millisecond)),
		kgo.FetchMaxWait(cfg.BatchWait),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	opts = append(opts, signalOpts()...)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if cfg.GroupProtocol == GroupProtocolConsumer {
		// With the cooperative-sticky balancer above, franz-go asks the
		// broker's "uniform" assignor.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	return opts
}

// Client is the part of *kgo.Client a stream uses. It must be built with
// ConsumerOpts.
type Client interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	AllowRebalance()
	CommitRecords(ctx context.Context, rs ...*kgo.Record) error
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
	Close()
}

// Dialer opens a client built with ConsumerOpts. Run calls it once at the
// start and again each time the group has moved on without this worker.
type Dialer func(ctx context.Context) (Client, error)

// ClientOf returns a Dialer that hands out cl the first time and fails
// after: for tests and callers that never need a second session.
func ClientOf(cl Client) Dialer {
	used := false
	return func(context.Context) (Client, error) {
		if used {
			return nil, errors.New("stream: the group moved on and this client cannot rejoin it (no dialer)")
		}
		used = true
		return cl, nil
	}
}

// ErrInstanceIDInUse is returned by Run when the broker fenced this worker
// because another live member joined with its instance id: two workers
// share one (two hosts with one name, or one --instance-id given twice).
// Rejoining would fence the other in turn, for ever; Run stops instead.
var ErrInstanceIDInUse = errors.New("another live worker uses this instance id")

// fenced is the error of a worker fenced out of its group.
func fenced(cfg Config, err error) error {
	return fmt.Errorf("stream: %w: group %s, instance id %q (give each worker its own --instance-id): %w",
		ErrInstanceIDInUse, cfg.Group, cfg.InstanceID, err)
}

// errGroupMoved marks a commit the group refused because it has moved on
// without this member: what is in hand must be dropped and re-read.
var errGroupMoved = errors.New("the consumer group moved on without this worker")

// closeTimeout bounds leaving the group when a client closes, so that an
// unreachable broker cannot hang a stop.
const closeTimeout = 5 * time.Second

// Run consumes until ctx is cancelled or a fatal error happens. On
// cancellation it finishes the batches in hand (store, commit) within
// cfg.ShutdownTimeout, closes its client, which leaves the group (a static
// member by its instance id), and returns nil. On a fatal error it leaves
// too, except when fenced: another live worker joined with its instance
// id, and Run returns an error matching ErrInstanceIDInUse.
//
// When a commit is refused because the group moved on, Run drops the
// batches in hand (uncommitted, so they are read again), closes the client
// and dials a new one, which rejoins and resumes from the committed offsets;
// a dial that fails then is retried with backoff until ctx ends. Only the
// first dial's error is returned as is: a wrong address fails fast.
func Run(ctx context.Context, dial Dialer, dec Decoder, snk Sink, cfg Config) error {
	cfg.defaults()
	for session := 1; ; session++ {
		cl, err := dialSession(ctx, dial, cfg, session)
		if err != nil {
			if ctx.Err() != nil && session > 1 {
				return nil
			}
			return err
		}
		err = runSession(ctx, cl, dec, snk, cfg)
		// A static member leaves whenever it stops: asked to, or on an
		// error. It stays when it rejoins (its new client takes its place)
		// and when it was fenced (the id is another live member's now).
		rejoin := errors.Is(err, errGroupMoved) && ctx.Err() == nil
		closeClient(cl, cfg, !rejoin && !errors.Is(err, ErrInstanceIDInUse))
		if !errors.Is(err, errGroupMoved) || ctx.Err() != nil {
			if ctx.Err() != nil && errors.Is(err, errGroupMoved) {
				return nil
			}
			return err
		}
		cfg.Logger.Warn("the group moved on; dropping the batches in hand and rejoining from the committed offsets", "err", err)
		if cfg.Metrics != nil {
			cfg.Metrics.Rejoins.Inc()
		}
	}
}

// dialSession opens the client of one session, retrying after the first.
func dialSession(ctx context.Context, dial Dialer, cfg Config, session int) (Client, error) {
	if session == 1 {
		return dial(ctx)
	}
	var cl Client
	err := retry(ctx, cfg, "rejoin", func(ctx context.Context) error {
		var err error
		cl, err = dial(ctx)
		return err
	})
	return cl, err
}

// closeClient leaves the group within closeTimeout, then closes. kgo does
// not leave on behalf of a static member (a restart is meant to take its
// place without a rebalance); when leaving, a static member leaves by its
// instance id, so its partitions move at once instead of after its
// session timeout.
func closeClient(cl Client, cfg Config, leaving bool) {
	cl.AllowRebalance()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if l, ok := cl.(interface{ LeaveGroupContext(context.Context) error }); ok {
		_ = l.LeaveGroupContext(ctx)
	}
	if kc, ok := cl.(*kgo.Client); ok && leaving && cfg.InstanceID != "" {
		if _, err := kadm.NewClient(kc).LeaveGroup(ctx, kadm.LeaveGroup(cfg.Group).InstanceIDs(cfg.InstanceID).Reason("stopped")); err != nil {
			cfg.Logger.Warn("could not leave the group; its partitions move after the session timeout", "instance", cfg.InstanceID, "err", err)
		}
	}
	cl.Close()
}

// groupMoved reports whether a commit error means the group has moved on
// without this member, so retrying the commit can never succeed.
func groupMoved(err error) bool {
	for _, e := range groupMovedErrs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func wrapGroupMoved(err error) error {
	if groupMoved(err) {
		return fmt.Errorf("%w: %w", errGroupMoved, err)
	}
	return err
}
