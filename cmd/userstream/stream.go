package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/member"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
)

// streamFlags configure a stream worker.
type streamFlags struct {
	sink        string
	group       string
	batchSize   int
	batchWait   time.Duration
	metricsAddr string
	partitions  int32
	instanceID  string
	session     time.Duration
	protocol    string
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
	fs.StringVar(&s.instanceID, "instance-id", "", "static group membership: a worker restarted with the same id takes its partitions back at once (unique per live worker; empty: HOST-uUID-N, the lowest N no live worker of the group on this host holds; "+member.Dynamic+": dynamic membership)")
	fs.StringVar(&s.protocol, "group-protocol", stream.GroupProtocolClassic, "consumer group protocol: classic, or consumer (KIP-848: the broker assigns partitions; Kafka 4+, else classic)")
	fs.DurationVar(&s.session, "session-timeout", stream.DefaultSessionTimeout, "how long the group waits for a silent worker before moving its partitions")
	fs.DurationVar(&s.failAfter, "unhealthy-after", stream.DefaultFailAfter, "/healthz turns 503 when a sink write, commit, fetch or registry call keeps failing this long")
	fs.DurationVar(&s.stallAfter, "stalled-after", stream.DefaultStallAfter, "/healthz turns 503 when the group has lag and commits nothing this long")
}

// config returns the stream.Config these flags describe.
func (s *streamFlags) config(a *app, m *stream.Metrics) stream.Config {
	return stream.Config{Group: s.group, BatchSize: s.batchSize, BatchWait: s.batchWait, InstanceID: s.instanceID,
		SessionTimeout: s.session, GroupProtocol: s.protocol, Logger: a.log, Metrics: m, Health: stream.NewHealth(s.stallAfter, s.failAfter)}
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
	if err := stream.CheckGroupProtocol(s.protocol); err != nil {
		return usagef("--group-protocol: %q: give classic or consumer", s.protocol)
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
			err := stack.RunStream(cmd.Context(), stack.StreamRun{Kafka: kc, Config: sf.config(a, stream.NewMetrics(reg)),
				Partitions: sf.partitions, Prometheus: reg, MetricsAddr: sf.metricsAddr, SinkName: redact.URL(sf.sink),
				OpenSink: func(ctx context.Context) (stream.Sink, func() error, error) { return openStreamSink(ctx, sf.sink) },
				OpenDecoder: func(ctx context.Context, h *stream.Health) (stream.Decoder, error) {
					return codec.waitDecoder(ctx, a, h)
				},
			})
			if errors.Is(err, stack.ErrMetricsAddr) {
				return fmt.Errorf("--metrics-addr: %w (pass another address, or an empty one to turn metrics off)", err)
			}
			return kafkaUsage(err)
		},
	}
	addKafkaFlags(cmd.Flags(), &kc)
	codec.addFlags(cmd.Flags(), false)
	sf.addFlags(cmd, "sqlite:./data/users.db")
	return cmd
}
