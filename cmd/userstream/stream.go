package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/stream"
)

// streamFlags configure a stream worker; `dev` reuses them.
type streamFlags struct {
	sink        string
	group       string
	batchSize   int
	batchWait   time.Duration
	metricsAddr string
	partitions  int32
	instanceID  string
	session     time.Duration
	failAfter   time.Duration
	stallAfter  time.Duration
}

func (s *streamFlags) addFlags(cmd *cobra.Command, sinkDefault string) {
	fs := cmd.Flags()
	fs.StringVar(&s.sink, "sink", sinkDefault, "where users land: sqlite:PATH | postgres://... | cassandra://host:9042/spark_streams")
	fs.StringVar(&s.group, "group", stream.DefaultGroup, "consumer group; workers in one group share the partitions")
	fs.IntVar(&s.batchSize, "batch-size", stream.DefaultBatchSize, "most records per sink write")
	fs.DurationVar(&s.batchWait, "batch-wait", stream.DefaultBatchWait, "longest a batch keeps growing while the previous one is being written (an idle sink gets each record at once)")
	fs.StringVar(&s.metricsAddr, "metrics-addr", stream.DefaultMetricsAddr, "serve Prometheus /metrics and /healthz here (empty: off)")
	fs.Int32Var(&s.partitions, "partitions", broker.DefaultPartitions, "partitions of users_created when it has to be created")
	fs.StringVar(&s.instanceID, "instance-id", "", "static group membership: a worker restarted with the same id takes its partitions back at once (unique per live worker; empty: dynamic)")
	fs.DurationVar(&s.session, "session-timeout", stream.DefaultSessionTimeout, "how long the group waits for a silent worker before moving its partitions")
	fs.DurationVar(&s.failAfter, "unhealthy-after", stream.DefaultFailAfter, "/healthz turns 503 when a sink write, commit, fetch or registry call keeps failing this long")
	fs.DurationVar(&s.stallAfter, "stalled-after", stream.DefaultStallAfter, "/healthz turns 503 when the group has lag and commits nothing this long")
}

// config returns the stream.Config these flags describe.
func (s *streamFlags) config(a *app, m *stream.Metrics) stream.Config {
	return stream.Config{Group: s.group, BatchSize: s.batchSize, BatchWait: s.batchWait, InstanceID: s.instanceID,
		SessionTimeout: s.session, Logger: a.log, Metrics: m, Health: stream.NewHealth(s.stallAfter, s.failAfter)}
}

func (s *streamFlags) validate() error {
	if s.sink == "" {
		return usagef("--sink is required: sqlite:./data/users.db, postgres://... or cassandra://...")
	}
	if err := checkSinkURL(s.sink); err != nil {
		return err
	}
	if s.group == "" {
		return usagef("--group must not be empty")
	}
	if s.batchSize < 1 {
		return usagef("--batch-size: %d must be at least 1", s.batchSize)
	}
	if s.batchWait <= 0 {
		return usagef("--batch-wait: %s must be positive", s.batchWait)
	}
	if s.failAfter <= 0 || s.stallAfter <= 0 {
		return usagef("--unhealthy-after and --stalled-after must be positive")
	}
	if s.session < time.Second {
		return usagef("--session-timeout: %s is too short (at least 1s; brokers refuse under their group.min.session.timeout.ms, 6s by default on Kafka)", s.session)
	}
	return nil
}

func newStreamCmd(a *app) *cobra.Command {
	var (
		kc    = broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}}
		codec codecFlags
		sf    streamFlags
	)
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Consume users_created and upsert every user into a sink, exactly once in effect (the Spark job)",
		Example: `  userstream stream --sink sqlite:./data/users.db
  userstream stream --brokers broker:29092 --sink cassandra://cassandra:9042/spark_streams`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sf.validate(); err != nil {
				return err
			}
			if err := codec.validate(); err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			m := stream.NewMetrics(reg)
			return runStream(cmd.Context(), a, kc, sf, sf.config(a, m), reg, streamParts{
				sink: func(ctx context.Context) (stream.Sink, func() error, error) {
					snk, err := openSink(ctx, sf.sink)
					if err != nil {
						return nil, nil, err
					}
					return snk, snk.Close, nil
				},
				decoder: func(ctx context.Context, h *stream.Health) (stream.Decoder, error) {
					return codec.waitDecoder(ctx, a, h)
				},
			})
		},
	}
	addKafkaFlags(cmd.Flags(), &kc)
	codec.addFlags(cmd.Flags(), false)
	sf.addFlags(cmd, "sqlite:./data/users.db")
	return cmd
}

// streamParts open what a stream reads with and writes to, in the order
// runStream needs them: Kafka is reached first, then the sink, then the
// registry (so a wrong --brokers is the first thing a user hears of).
type streamParts struct {
	sink    func(ctx context.Context) (stream.Sink, func() error, error)
	decoder func(ctx context.Context, h *stream.Health) (stream.Decoder, error)
}

// runStream connects, ensures the topics, serves metrics and health, opens
// the sink and the decoder, keeps the lag gauge fresh and runs the stream
// until ctx ends.
func runStream(ctx context.Context, a *app, kc broker.Config, sf streamFlags, cfg stream.Config,
	reg *prometheus.Registry, parts streamParts) error {
	// The group's members then say what they are (franz-go's default is
	// "kgo"); a static member's instance id tells workers apart.
	kc.ClientID = cmp.Or(kc.ClientID, strings.TrimSuffix("userstream-stream-"+cfg.InstanceID, "-"))
	opts := stream.ConsumerOpts(cfg)
	if reg != nil {
		// franz-go's own client metrics: requests, bytes, records, errors
		// by broker; one hook for every client the stream dials.
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("userstream_kafka", kprom.Registry(reg))))
	}
	// A client of its own for topics and lag: the consumer's is replaced
	// when the stream rejoins.
	admCl, err := connect(ctx, kc)
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := ensureTopics(ctx, a, adm, sf.partitions); err != nil {
		return err
	}
	if cfg.Health == nil {
		cfg.Health = stream.NewHealth(0, 0)
	}
	if sf.metricsAddr != "" {
		stop, err := serveMetrics(ctx, a, sf.metricsAddr, reg, cfg.Health.Check)
		if err != nil {
			return err
		}
		defer stop()
	}
	var gauge prometheus.Gauge
	if cfg.Metrics != nil {
		gauge = cfg.Metrics.Lag
	}
	go trackLag(ctx, a, adm, cfg.Group, gauge, cfg.Health)
	snk, closeSink, err := parts.sink(ctx)
	if err != nil {
		return err
	}
	defer closeSink()
	dec, err := parts.decoder(ctx, cfg.Health)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	dial := func(ctx context.Context) (stream.Client, error) {
		cl, err := connect(ctx, kc, opts...)
		if err != nil {
			return nil, err
		}
		return cl, nil
	}
	a.log.Info("stream started", "group", cfg.Group, "instance", cfg.InstanceID, "sink", redactURL(sf.sink), "metrics", sf.metricsAddr)
	err = stream.Run(ctx, dial, dec, snk, cfg)
	a.log.Info("stream stopped")
	return err
}

// trackLag refreshes the lag gauge and the stream's health every few
// seconds.
func trackLag(ctx context.Context, a *app, adm *kadm.Client, group string, g prometheus.Gauge, h *stream.Health) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		gl, err := broker.GroupOffsets(ctx, adm, group, broker.Topic)
		if err == nil {
			if g != nil {
				g.Set(float64(gl.Lag))
			}
			var committed int64
			for _, c := range gl.Committed {
				committed += max(c, 0)
			}
			h.SetLag(gl.Lag, committed)
		} else if ctx.Err() == nil {
			h.LagFailed(err)
			a.log.Debug("lag unavailable", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// serveMetrics serves /metrics and /healthz on addr until stop is called.
// /healthz answers 200 "ok", or 503 with what check says is wrong (see
// stream.Health).
func serveMetrics(ctx context.Context, a *app, addr string, reg *prometheus.Registry, check func() error) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w (pass another address, or an empty one to turn metrics off)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "unhealthy:", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
