package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
)

func newDevCmd(a *app) *cobra.Command {
	var (
		dataDir      string
		kafkaAddr    string
		apiAddr      string
		registryAddr string
		metricsAddr  string
		format       string
		interval     time.Duration
		perRun       int
		statusEvery  time.Duration
		ret          retentionFlags
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline in one process: embedded Kafka, registry, API, producer, stream into SQLite",
		Long: `dev runs every role at once: an embedded Kafka-protocol broker, an embedded
Schema Registry, the built-in Random User API, a producer that ingests users on
an interval, and a stream that lands them in SQLite under --data-dir.
Ctrl-C stops cleanly; a second start on the same --data-dir resumes with no loss
and no duplicate rows.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return usagef("--interval: %s must be positive", interval)
			}
			if perRun < 1 {
				return usagef("--users-per-run: %d must be at least 1", perRun)
			}
			if err := ret.validate(); err != nil {
				return err
			}
			if format != "avro" && format != "json" {
				return usagef("--format: %q is not avro or json", format)
			}
			return runDev(cmd.Context(), a, devConfig{
				dataDir: dataDir, kafkaAddr: kafkaAddr, apiAddr: apiAddr, registryAddr: registryAddr,
				metricsAddr: metricsAddr, format: format, interval: interval, perRun: perRun, statusEvery: statusEvery, retention: ret,
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dataDir, "data-dir", "./data", "where the broker log (kafka/), schemas (schemas/) and users (users.db) live")
	fs.StringVar(&kafkaAddr, "kafka-addr", broker.DefaultEmbeddedAddr, "embedded Kafka listener")
	fs.StringVar(&apiAddr, "api-addr", randomuser.DefaultAddr, "built-in Random User API listener")
	fs.StringVar(&registryAddr, "registry-addr", schema.DefaultRegistryAddr, "embedded Schema Registry listener")
	fs.StringVar(&metricsAddr, "metrics-addr", stream.DefaultMetricsAddr, "Prometheus /metrics and /healthz (empty: off)")
	fs.StringVar(&format, "format", "avro", "message format the producer writes: avro or json")
	fs.DurationVar(&interval, "interval", 5*time.Second, "time between ingest runs")
	fs.IntVar(&perRun, "users-per-run", 1000, "users each ingest run produces")
	fs.DurationVar(&statusEvery, "status-every", 5*time.Second, "how often to print the status line")
	ret.addFlags(fs)
	return cmd
}

type devConfig struct {
	dataDir, kafkaAddr, apiAddr, registryAddr, metricsAddr, format string
	interval, statusEvery                                          time.Duration
	perRun                                                         int
	retention                                                      retentionFlags
}

// runDev starts every role, prints where to look, and runs until ctx ends.
func runDev(ctx context.Context, a *app, c devConfig) error {
	st, err := stack.Start(ctx, stack.Config{DataDir: c.dataDir, KafkaAddr: c.kafkaAddr, RegistryAddr: c.registryAddr,
		APIAddr: c.apiAddr, Format: c.format, Retention: c.retention.retention, RetentionBytes: c.retention.bytes, Logger: a.log})
	if err != nil {
		return devStartErr(err)
	}
	defer st.Close()

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := stream.NewMetrics(promReg)
	scfg := stream.Config{Group: stream.DefaultGroup, Logger: a.log, Metrics: m}
	sf := streamFlags{sink: st.SinkURL, metricsAddr: c.metricsAddr, partitions: broker.DefaultPartitions}

	metricsURL := "off"
	if c.metricsAddr != "" {
		metricsURL = "http://" + c.metricsAddr + "/metrics"
	}
	fmt.Fprintf(a.stdout, `userstream dev is running (data in %s)
  Kafka             %s   (kcat -b %s -L)
  Schema Registry   %s
  Random User API   %s?results=5
  metrics           %s
  users             userstream users count --sink %s
Ctrl-C stops; a second start resumes where this one left off.
`, c.dataDir, st.Broker.Addr(), st.Broker.Addr(), st.Registry.URL(), st.APIURL, metricsURL, st.SinkURL)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- runStream(ctx, a, st.Kafka, sf, scfg, promReg, streamParts{
			sink: func(context.Context) (stream.Sink, func() error, error) {
				return st.Sink, func() error { return nil }, nil
			},
			decoder: func(context.Context, *stream.Health) (stream.Decoder, error) { return st.Decoder, nil },
		})
	}()

	src, err := st.Source()
	if err != nil {
		return err
	}
	prod, err := st.Producer(ctx)
	if err != nil {
		return err
	}
	defer prod.Close()
	snk := st.Sink
	var produced atomic.Int64
	ingestDone := make(chan error, 1)
	go func() {
		pf := produceFlags{users: c.perRun, batchSize: min(c.perRun, 1000), concurrency: 2}
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			s, err := runIngest(ctx, a, prod, src, st.APIURL, st.Encoder, pf, true)
			produced.Add(s.Produced)
			if err != nil && ctx.Err() == nil {
				a.log.Error("ingest run failed; the next run retries", "err", err, "summary", s.String())
			} else if err == nil {
				a.log.Debug("ingest run", "summary", s.String(), "format", st.EncoderName)
			}
			select {
			case <-ctx.Done():
				ingestDone <- nil
				return
			case <-t.C:
			}
		}
	}()

	adm := kadm.NewClient(prod)
	status := time.NewTicker(c.statusEvery)
	defer status.Stop()
	// The rate counts from what the sink held at start, so the first line
	// has one too; "in topic" is the topic's total, like "stored".
	lastStored, _ := snk.Count(ctx)
	lastAt := time.Now()
	for {
		select {
		case err := <-streamDone:
			cancel()
			<-ingestDone
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			return nil
		case <-status.C:
			stored, err := snk.Count(ctx)
			if err != nil {
				a.log.Warn("status: count failed", "err", err)
				continue
			}
			gl, _ := broker.GroupOffsets(ctx, adm, stream.DefaultGroup, broker.Topic)
			var inTopic int64
			if ends, err := adm.ListEndOffsets(ctx, broker.Topic); err == nil {
				ends.Each(func(o kadm.ListedOffset) { inTopic += o.Offset })
			}
			now := time.Now()
			rate := float64(stored-lastStored) / now.Sub(lastAt).Seconds()
			lastStored, lastAt = stored, now
			fmt.Fprintf(a.stdout, "%s in topic %d (+%d since start), stored %d, lag %d, %.0f users/s\n",
				now.Format("15:04:05"), inTopic, produced.Load(), stored, gl.Lag, rate)
		}
	}
}

// devStartErr names dev's flag for a busy address.
func devStartErr(err error) error {
	switch {
	case errors.Is(err, stack.ErrKafkaAddr):
		return brokerStartErr(err, "--kafka-addr")
	case errors.Is(err, stack.ErrRegistryAddr):
		return fmt.Errorf("%w (--registry-addr)", err)
	case errors.Is(err, stack.ErrAPIAddr):
		return fmt.Errorf("%w (pass another --api-addr)", err)
	}
	return err
}
