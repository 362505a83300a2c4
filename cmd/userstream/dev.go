package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	kconnect "github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/web"
)

func newDevCmd(a *app) *cobra.Command {
	var c devConfig
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline in one process: embedded Kafka, registry, API, scheduler, stream into SQLite",
		Long: `dev runs every role at once: an embedded Kafka-protocol broker, an embedded
Schema Registry, the built-in Random User API, the scheduler running the
user_automation DAG on --schedule (default every 10 s, 1000 users a run) with
its REST API on --web-addr, and a stream that lands the users in SQLite, all
under --data-dir (kafka/, schemas/, users.db, meta.db).
Ctrl-C stops cleanly; a second start on the same --data-dir resumes with no loss
and no duplicate rows.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("interval") {
				if c.interval <= 0 {
					return usagef("--interval: %s must be positive", c.interval)
				}
				if !cmd.Flags().Changed("schedule") {
					c.dags.schedule = "@every " + c.interval.String()
				}
			}
			if err := c.retention.validate(); err != nil {
				return err
			}
			if c.format != "avro" && c.format != "json" {
				return usagef("--format: %q is not avro or json", c.format)
			}
			if _, err := c.dags.specs(); err != nil {
				return err
			}
			return runDev(cmd.Context(), a, c)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.dataDir, "data-dir", "./data", "where the broker log (kafka/), schemas (schemas/), users (users.db) and run metadata (meta.db) live")
	fs.StringVar(&c.kafkaAddr, "kafka-addr", broker.DefaultEmbeddedAddr, "embedded Kafka listener")
	fs.StringVar(&c.apiAddr, "api-addr", randomuser.DefaultAddr, "built-in Random User API listener")
	fs.StringVar(&c.registryAddr, "registry-addr", schema.DefaultRegistryAddr, "embedded Schema Registry listener")
	fs.StringVar(&c.webAddr, "web-addr", "127.0.0.1:8080", "the scheduler's REST API (Airflow's port; empty: off)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", stream.DefaultMetricsAddr, "Prometheus /metrics and /healthz of the stream (empty: off)")
	fs.StringVar(&c.connectAddr, "connect-addr", "127.0.0.1:8083", "a Kafka Connect worker's REST API (Connect's port; no connector until one is created; empty: off)")
	fs.StringVar(&c.format, "format", "avro", "message format the producer writes: avro or json")
	fs.StringVar(&c.viewer, "viewer-password", "", "also create a read-only login \"viewer\" with this password (prefer USERSTREAM_VIEWER_PASSWORD)")
	fs.StringVar(&c.password, "admin-password", "", "the admin login's password (prefer USERSTREAM_ADMIN_PASSWORD; empty: keep the stored one, or generate one at the first start)")
	fs.DurationVar(&c.interval, "interval", 0, "deprecated: --schedule '@every D' says the same")
	_ = fs.MarkHidden("interval")
	fs.DurationVar(&c.statusEvery, "status-every", 5*time.Second, "how often to print the status line")
	c.dags.addFlags(fs, "@every 10s", 1000, 0)
	c.retention.addFlags(fs)
	return cmd
}

type devConfig struct {
	dataDir, kafkaAddr, apiAddr, registryAddr, webAddr, metricsAddr, format, password string
	viewer, connectAddr                                                               string
	interval, statusEvery                                                             time.Duration
	dags                                                                              dagFlags
	retention                                                                         retentionFlags
}

// runDev starts every role, prints where to look, and runs until ctx ends.
func runDev(ctx context.Context, a *app, c devConfig) error {
	// The overview shows the last warnings and errors of this process.
	errLog := &web.ErrorLog{}
	ac := *a
	ac.log = slog.New(errLog.Handler(a.log.Handler()))
	a = &ac
	st, err := stack.Start(ctx, stack.Config{DataDir: c.dataDir, KafkaAddr: c.kafkaAddr, RegistryAddr: c.registryAddr,
		APIAddr: c.apiAddr, Format: c.format, Retention: c.retention.retention, RetentionBytes: c.retention.bytes, Logger: a.log})
	if err != nil {
		return devStartErr(err)
	}
	defer st.Close()

	src, err := st.Source()
	if err != nil {
		return err
	}
	dags, err := c.dags.buildDAGs(stack.Producing{Source: src, SourceName: st.APIURL, Encoder: st.Encoder, Logger: a.log,
		Producer: func(ctx context.Context) (*kgo.Client, error) { return st.Producer(ctx) }})
	if err != nil {
		return err
	}

	// The web listener is taken before anything runs, so a busy port
	// fails the start rather than later; it answers 503 until the UI is
	// built.
	var (
		webLn net.Listener
		ui    atomic.Pointer[web.Server]
	)
	var connectLn net.Listener
	if c.connectAddr != "" {
		if connectLn, err = net.Listen("tcp", c.connectAddr); err != nil {
			return fmt.Errorf("--connect-addr %s: %w (pass another address, or an empty one to turn Connect off)", c.connectAddr, err)
		}
		defer connectLn.Close()
	}
	if c.webAddr != "" {
		if webLn, err = net.Listen("tcp", c.webAddr); err != nil {
			return fmt.Errorf("--web-addr %s: %w (pass another address, or an empty one to turn it off)", c.webAddr, err)
		}
		serveWeb(ctx, a, webLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := ui.Load(); h != nil {
				h.ServeHTTP(w, r)
				return
			}
			http.Error(w, "userstream dev is starting", http.StatusServiceUnavailable)
		}))
	}

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := stream.NewMetrics(promReg)
	scfg := stream.Config{Group: stream.DefaultGroup, Logger: a.log, Metrics: m}
	sf := streamFlags{sink: st.SinkURL, metricsAddr: c.metricsAddr, partitions: broker.DefaultPartitions}

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

	var sched atomic.Pointer[scheduler.Scheduler]
	ready := make(chan struct{})
	schedDone := make(chan error, 1)
	go func() {
		// The scheduler's own routes go to a mux nobody serves: the UI
		// serves its REST API.
		schedDone <- runScheduler(ctx, a, schedulerRun{metadata: "sqlite:" + filepath.Join(c.dataDir, "meta.db"), password: c.password, viewer: c.viewer,
			dags: dags, mux: http.NewServeMux(), tickAtStart: true, ready: func(s *scheduler.Scheduler, _ string) { sched.Store(s); close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-schedDone:
		cancel()
		<-streamDone
		return err
	}
	if webLn != nil {
		s := sched.Load()
		h, closeUI, err := buildWeb(ctx, a, webParts{kafka: st.Kafka, registry: st.Registry.URL(), sink: st.Sink,
			service: s.Service(), store: s.Store(), group: stream.DefaultGroup, latency: m.Latency, errors: errLog, heart: s.LastTick})
		if err != nil {
			cancel()
			<-streamDone
			<-schedDone
			return err
		}
		defer closeUI()
		ui.Store(h)
	}

	connectURL := "off"
	if connectLn != nil {
		// A worker of its own cluster on the embedded broker; logins are
		// the scheduler's (the admin printed above).
		meta, err := stores.Open(ctx, "sqlite:"+filepath.Join(c.dataDir, "meta.db"))
		if err != nil {
			return fmt.Errorf("connect worker: %w", err)
		}
		defer meta.Close()
		connectDone := make(chan struct{})
		go func() {
			defer close(connectDone)
			err := runConnect(ctx, a, connectLn, meta, broker.Config{Brokers: []string{st.Broker.Addr()}},
				codecFlags{registry: st.Registry.URL()}, kconnect.WorkerConfig{})
			if err != nil && ctx.Err() == nil {
				a.log.Error("connect worker stopped", "err", err)
			}
		}()
		defer func() { <-connectDone }()
		connectURL = "http://" + connectLn.Addr().String() + "/connectors   (Kafka Connect's REST API, docs/connect.md)"
	}
	metricsURL, webURL := "off", "off"
	if c.metricsAddr != "" {
		metricsURL = "http://" + c.metricsAddr + "/metrics"
	}
	if webLn != nil {
		webURL = "http://" + webLn.Addr().String() + "/   (user admin; Airflow's REST API under /api/v1/)"
	}
	fmt.Fprintf(a.stdout, `userstream dev is running (data in %s)
  Kafka             %s   (kcat -b %s -L)
  Schema Registry   %s
  Random User API   %s?results=5
  scheduler         %s, %s
  web UI            %s
  Kafka Connect     %s
  metrics           %s
  users             userstream users count --sink %s
  runs              userstream dags runs %s --metadata sqlite:%s
Ctrl-C stops; a second start resumes where this one left off.
`, c.dataDir, st.Broker.Addr(), st.Broker.Addr(), st.Registry.URL(), st.APIURL, dags[0].DagID, scheduleLabel(dags[0].Schedule),
		webURL, connectURL, metricsURL, st.SinkURL, dags[0].DagID, filepath.Join(c.dataDir, "meta.db"))

	prod, err := st.Producer(ctx)
	if err != nil {
		return err
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	status := time.NewTicker(c.statusEvery)
	defer status.Stop()
	// The rate counts from what the sink held at start, so the first line
	// has one too; "in topic" is the topic's total, like "stored".
	lastStored, _ := st.Sink.Count(ctx)
	lastAt := time.Now()
	for {
		select {
		case err := <-streamDone:
			cancel()
			<-schedDone
			if err != nil {
				return fmt.Errorf("stream: %w", err)
			}
			return nil
		case err := <-schedDone:
			cancel()
			<-streamDone
			if err != nil {
				return fmt.Errorf("scheduler: %w", err)
			}
			return nil
		case <-status.C:
			stored, err := st.Sink.Count(ctx)
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
			fmt.Fprintf(a.stdout, "%s in topic %d, stored %d, lag %d, %.0f users/s, %s\n",
				now.Format("15:04:05"), inTopic, stored, gl.Lag, rate, lastRun(ctx, sched.Load(), dags[0].DagID))
		}
	}
}

// lastRun describes a DAG's newest run for the status line.
func lastRun(ctx context.Context, s *scheduler.Scheduler, dagID string) string {
	if s == nil {
		return "no run yet"
	}
	runs, total, err := s.Store().ListRuns(ctx, scheduler.RunFilter{DagID: dagID, OrderBy: "-logical_date", Limit: 1})
	if err != nil || len(runs) == 0 {
		return "no run yet"
	}
	return fmt.Sprintf("last run %s %s (%d runs)", runs[0].RunID, runs[0].State, total)
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
