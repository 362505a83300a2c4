// Package stack is the composition root: it assembles the pipeline (broker,
// Schema Registry, built-in API, sink, codecs; then the scheduler, the
// stream or a Connect worker, the web UI, metrics and health) and starts
// and stops it in one place.
//
// `userstream dev`, `userstream bench` and tests run the same Stack, and
// the one stream path (RunStream) is also `userstream stream`'s; `web` and
// `connect` build their UI and worker here too. The broker and the registry
// are embedded unless Config names outside ones. Each embedded part listens
// on 127.0.0.1 only; with a data dir the broker's log, the registry's
// schemas and the users survive a restart.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/registry"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/web"
)

// Config says what to start. Zero fields take the defaults in brackets.
type Config struct {
	// DataDir keeps the broker's log (kafka/), the registry's schemas
	// (schemas/) and the SQLite users (users.db). "" keeps the broker and
	// the registry in memory and needs SinkURL.
	DataDir string
	// Listen addresses [broker.DefaultEmbeddedAddr, schema.DefaultRegistryAddr,
	// randomuser.DefaultAddr]; port 0 picks a free port.
	KafkaAddr, RegistryAddr, APIAddr string
	// Kafka, when it names brokers, is an outside cluster: no embedded
	// broker starts (KafkaAddr is not used), and Start creates the topics
	// it lacks with Partitions and the cluster's default replication
	// factor (Retention and RetentionBytes are the embedded broker's only).
	Kafka broker.Config
	// RegistryURL, when set, is an outside Schema Registry (no embedded
	// one starts; RegistryAddr is not used), or "none": no registry, the
	// messages are plain JSON.
	RegistryURL string
	// Partitions of the topics the stack creates [broker.DefaultPartitions].
	Partitions int32
	// Retention and RetentionBytes of the embedded broker's topics
	// [broker.DefaultRetention, broker.DefaultRetentionBytes]; see
	// broker.WithRetention.
	Retention      time.Duration
	RetentionBytes int64
	// Format the producer writes: schema.FormatAvro or schema.FormatJSON
	// [avro; json when RegistryURL is "none"].
	Format string
	// SinkURL is where users land [sqlite:DataDir/users.db].
	SinkURL string
	// Generator serves the built-in API [randomuser.NewGenerator()].
	Generator *randomuser.Generator
	Logger    *slog.Logger // [discard]
}

// Stack is the running pipeline. Its fields are set by Start
// and must not be changed.
type Stack struct {
	// Broker and Registry are the embedded ones; nil for an outside one.
	Broker   *broker.Embedded
	Registry *registry.Server
	// APIURL is the built-in API's endpoint, http://127.0.0.1:PORT/api/.
	APIURL string
	// Sink is where the stream stores users; SinkURL names it.
	Sink    sink.Sink
	SinkURL string
	// Encoder is what the producer writes with (its name in EncoderName);
	// Decoder what the stream reads with (Avro and JSON alike).
	Encoder     ingest.Encoder
	EncoderName string
	Decoder     stream.Decoder
	// Kafka reaches the broker; RegistryURL is the registry's URL.
	Kafka       broker.Config
	RegistryURL string
	// Errors keeps the last warnings and errors logged by the stack's
	// parts, for the web UI's overview.
	Errors *web.ErrorLog

	log        *slog.Logger
	dataDir    string
	format     string
	partitions int32
	api        *http.Server
	closers    []func() error
}

// Errors of Start that say which listener was busy; each matches the
// listen error as well.
var (
	ErrKafkaAddr    = errors.New("kafka address")
	ErrRegistryAddr = errors.New("schema registry address")
	ErrAPIAddr      = errors.New("random user API address")
)

type addrError struct {
	which error
	err   error
}

func (e *addrError) Error() string   { return e.err.Error() }
func (e *addrError) Unwrap() []error { return []error{e.which, e.err} }

// Start starts the broker, the registry, the built-in API, opens the sink
// and builds the codecs. On any error what was started is stopped again. A
// busy address is an error matching ErrKafkaAddr, ErrRegistryAddr or
// ErrAPIAddr (and broker.ErrAddrInUse for Kafka). ctx bounds the start; the
// stack runs until Close.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = broker.DefaultPartitions
	}
	if cfg.Retention == 0 && cfg.RetentionBytes == 0 {
		cfg.Retention, cfg.RetentionBytes = broker.DefaultRetention, broker.DefaultRetentionBytes
	}
	if cfg.Format == "" {
		cfg.Format = schema.FormatAvro
		if cfg.RegistryURL == "none" {
			cfg.Format = schema.FormatJSON
		}
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = randomuser.DefaultAddr
	}
	if cfg.SinkURL == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("stack: no data dir and no sink URL: nowhere to store users")
		}
		cfg.SinkURL = "sqlite:" + filepath.Join(cfg.DataDir, "users.db")
	}
	// The overview shows the last warnings and errors of the stack.
	errLog := &web.ErrorLog{}
	cfg.Logger = slog.New(errLog.Handler(cfg.Logger.Handler()))
	s := &Stack{log: cfg.Logger, SinkURL: cfg.SinkURL, Errors: errLog, dataDir: cfg.DataDir, format: cfg.Format, partitions: cfg.Partitions}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	kafkaDir, schemaDir := "", ""
	if cfg.DataDir != "" {
		kafkaDir, schemaDir = filepath.Join(cfg.DataDir, "kafka"), filepath.Join(cfg.DataDir, "schemas")
	}
	if len(cfg.Kafka.Brokers) > 0 {
		if err := s.useKafka(ctx, cfg.Kafka); err != nil {
			return nil, err
		}
	} else {
		s.Broker, err = broker.StartEmbedded(ctx, cfg.KafkaAddr, kafkaDir, broker.WithLogger(cfg.Logger),
			broker.WithPartitions(cfg.Partitions), broker.WithRetention(cfg.Retention, cfg.RetentionBytes))
		if err != nil {
			return nil, &addrError{ErrKafkaAddr, err}
		}
		s.closers = append(s.closers, s.Broker.Close)
		s.Kafka = broker.Config{Brokers: []string{s.Broker.Addr()}}
	}

	if cfg.RegistryURL != "" {
		s.RegistryURL = cfg.RegistryURL
	} else {
		s.Registry, err = registry.Start(ctx, cfg.RegistryAddr, schemaDir, registry.WithLogger(cfg.Logger))
		if err != nil {
			return nil, &addrError{ErrRegistryAddr, err}
		}
		s.closers = append(s.closers, s.Registry.Close)
		s.RegistryURL = s.Registry.URL()
	}

	gen := cfg.Generator
	if gen == nil {
		gen = randomuser.NewGenerator()
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, &addrError{ErrAPIAddr, fmt.Errorf("random user API: listen on %s: %w", cfg.APIAddr, err)}
	}
	s.api = &http.Server{Handler: randomuser.NewHandler(randomuser.WithGenerator(gen), randomuser.WithHandlerLogger(cfg.Logger)),
		ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("random user API stopped", "err", err)
		}
	}()
	s.closers = append(s.closers, s.api.Close)
	s.APIURL = "http://" + ln.Addr().String() + "/api/"

	s.Sink, err = sinks.Open(ctx, cfg.SinkURL)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Sink.Close)

	codec, name, err := schema.OpenCodec(ctx, s.RegistryURL, cfg.Format, true, schema.WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	s.Encoder, s.EncoderName = codec, name
	if serde, ok := codec.(*schema.Serde); ok {
		s.Decoder = serde
	} else {
		// JSON written, but the topic may hold Avro from earlier runs.
		if s.Decoder, _, err = schema.OpenCodec(ctx, s.RegistryURL, "", false, schema.WithLogger(cfg.Logger)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// useKafka makes an outside cluster the stack's Kafka: it must answer, and
// the topics it lacks are created with the cluster's default replication
// factor.
func (s *Stack) useKafka(ctx context.Context, kc broker.Config) error {
	cl, err := broker.NewClient(ctx, kc)
	if err != nil {
		return err
	}
	defer cl.Close()
	rep, err := broker.EnsureTopics(ctx, kadm.NewClient(cl), s.partitions, -1, broker.Topic, broker.DLQTopic)
	broker.LogEnsured(s.log, rep)
	if err != nil {
		return err
	}
	s.Kafka = kc
	return nil
}

// Source returns a client of the built-in API, as the producer uses it.
func (s *Stack) Source() (*randomuser.Client, error) {
	return randomuser.NewClient(s.APIURL, randomuser.WithLogger(s.log))
}

// Producer returns a Kafka client for producing users to the stack's
// broker (ingest.ProducerOpts); the caller closes it.
func (s *Stack) Producer(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	return broker.NewClient(ctx, s.Kafka, append(ingest.ProducerOpts(broker.Topic), extra...)...)
}

// RunStream runs a stream from the stack's topic into its sink until ctx
// ends, through the one stream path (RunStream) with the stack's decoder;
// extra are options of the consumer's client.
func (s *Stack) RunStream(ctx context.Context, cfg stream.Config, extra ...kgo.Opt) error {
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	return RunStream(ctx, s.streamRun(cfg, extra...))
}

// streamRun is the stack's stream: its Kafka, sink and decoder.
func (s *Stack) streamRun(cfg stream.Config, extra ...kgo.Opt) StreamRun {
	return StreamRun{Kafka: s.Kafka, Config: cfg, Partitions: s.partitions, SinkName: redact.URL(s.SinkURL), Extra: extra,
		OpenSink: func(context.Context) (stream.Sink, func() error, error) {
			return s.Sink, func() error { return nil }, nil
		},
		OpenDecoder: func(context.Context, *stream.Health) (stream.Decoder, error) { return s.Decoder, nil },
	}
}

// Close stops everything Start started, in reverse order, and returns the
// first error. It is safe to call more than once.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}
