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
	"github.com/userstream/userstream/internal/ingest/ingestdag"
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
its REST API on --web-addr, and a Kafka Connect worker on --connect-addr whose
connector users-sqlite lands the users in SQLite (--connect-addr "": a stream
does), all under --data-dir (kafka/, schemas/, users.db, meta.db).
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
	fs.StringVar(&c.connectAddr, "connect-addr", "127.0.0.1:8083", "a Kafka Connect worker's REST API (Connect's port); its connector users-sqlite stores the users (empty: no worker, a stream stores them)")
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
	dags, err := c.dags.buildDAGs(ingestdag.Producing{Source: src, SourceName: st.APIURL, Encoder: st.Encoder, Logger: a.log,
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
	// The sink's runner: the Connect worker's default connector, or, with
	// Connect off, the stream itself.
	group, runner := stream.DefaultGroup, "stream"
	streamDone := make(chan error, 1)
	if connectLn != nil {
		group, runner = kconnect.GroupOf(defaultConnector), "connect worker"
		if err := startDevConnect(ctx, a, c, st, connectLn, promReg, m, streamDone); err != nil {
			return err
		}
	} else {
		go func() {
			streamDone <- runStream(ctx, a, st.Kafka, sf, scfg, promReg, streamParts{
				sink: func(context.Context) (stream.Sink, func() error, error) {
					return st.Sink, func() error { return nil }, nil
				},
				decoder: func(context.Context, *stream.Health) (stream.Decoder, error) { return st.Decoder, nil },
			})
		}()
	}

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
		wp := webParts{kafka: st.Kafka, registry: st.Registry.URL(), sink: st.Sink,
			service: s.Service(), store: s.Store(), group: group, latency: m.Latency, errors: errLog, heart: s.LastTick}
		if connectLn != nil {
			wp.connect = "http://" + connectLn.Addr().String()
		}
		h, closeUI, err := buildWeb(ctx, a, wp)
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
		connectURL = "http://" + connectLn.Addr().String() + "/connectors   (Kafka Connect's REST API; connector " + defaultConnector + " stores the users)"
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
	// stopped says, once everything has stopped cleanly, what is kept: a
	// Ctrl-C otherwise ends dev without a word.
	stopped := func() {
		if n, err := st.Sink.Count(context.WithoutCancel(ctx)); err == nil {
			fmt.Fprintf(a.stdout, "userstream dev stopped: %d users stored (data in %s); a second start resumes.\n", n, c.dataDir)
		} else {
			fmt.Fprintf(a.stdout, "userstream dev stopped (data in %s); a second start resumes.\n", c.dataDir)
		}
	}
	for {
		select {
		case err := <-streamDone:
			cancel()
			<-schedDone
			if err != nil {
				return fmt.Errorf("%s: %w", runner, err)
			}
			stopped()
			return nil
		case err := <-schedDone:
			cancel()
			<-streamDone
			if err != nil {
				return fmt.Errorf("scheduler: %w", err)
			}
			stopped()
			return nil
		case <-status.C:
			stored, err := st.Sink.Count(ctx)
			if err != nil {
				a.log.Warn("status: count failed", "err", err)
				continue
			}
			gl, _ := broker.GroupOffsets(ctx, adm, group, broker.Topic)
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

// defaultConnector is the connector dev creates at its first start to
// store the users: what `stream` does, as a Kafka Connect connector.
const defaultConnector = "users-sqlite"

// startDevConnect starts dev's Connect worker on ln with the users' sink as
// its default connector, serves /metrics and /healthz for it (the tasks'
// health and the connector group's lag), and sends Run's result to done.
// The default connector is created unless the config topic ever held it
// (a connector the user deleted stays deleted); a data dir whose users a
// stream stored takes over the stream group's offsets, so nothing is read
// twice.
func startDevConnect(ctx context.Context, a *app, c devConfig, st *stack.Stack, ln net.Listener, promReg *prometheus.Registry,
	m *stream.Metrics, done chan<- error) error {
	meta, err := stores.Open(ctx, "sqlite:"+filepath.Join(c.dataDir, "meta.db"))
	if err != nil {
		return fmt.Errorf("connect worker: %w", err)
	}
	context.AfterFunc(ctx, func() { meta.Close() })
	kc := broker.Config{Brokers: []string{st.Broker.Addr()}}
	w, err := newConnectWorker(ctx, a, ln, meta, kc, codecFlags{registry: st.Registry.URL()}, kconnect.WorkerConfig{
		Metrics: m,
		// The default connector's URL is the stack's sink: one handle, so
		// one page cache, which the UI and the status line read too.
		OpenSink: func(ctx context.Context, url string) (stream.Sink, func() error, error) {
			if url == st.SinkURL {
				return st.Sink, func() error { return nil }, nil
			}
			return openStreamSink(ctx, url)
		},
	})
	if err != nil {
		return fmt.Errorf("connect worker: %w", err)
	}
	go func() { done <- w.Run(ctx) }()

	admCl, err := connect(ctx, kc)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, admCl.Close)
	adm := kadm.NewClient(admCl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A refusal (the group has members already) costs a re-read, not data.
	if n, err := broker.AdoptOffsets(cctx, adm, stream.DefaultGroup, kconnect.GroupOf(defaultConnector), broker.Topic); err != nil {
		a.log.Warn("connector could not take over the stream's offsets; it reads the topic from its start (upserts: no duplicate rows)", "err", err)
	} else if n > 0 {
		a.log.Info("connector takes over the stream's offsets", "connector", defaultConnector, "from_group", stream.DefaultGroup, "partitions", n)
	}
	h := stream.NewHealth(0, 0)
	go trackLag(ctx, a, adm, kconnect.GroupOf(defaultConnector), m.Lag, h)
	if c.metricsAddr != "" {
		if _, err := serveMetrics(ctx, a, c.metricsAddr, promReg, func() error { return errors.Join(w.Check(), h.Check()) }); err != nil {
			return err
		}
	}

	cfg := map[string]string{
		"connector.class": kconnect.ClassJDBC, "tasks.max": "1", "topics": broker.Topic,
		"connection.url": "jdbc:" + st.SinkURL, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
		"table.name.format": kconnect.Table, "auto.create": "true",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": broker.DLQTopic,
		"errors.deadletterqueue.context.headers.enable": "true",
	}
	if c.format == "json" {
		cfg["value.converter"] = "org.apache.kafka.connect.json.JsonConverter"
		cfg["value.converter.schemas.enable"] = "false"
	}
	created, err := w.CreateOnce(cctx, defaultConnector, cfg)
	if err != nil {
		return fmt.Errorf("connect worker: create connector %s: %w", defaultConnector, err)
	}
	if created {
		a.log.Info("connector created", "connector", defaultConnector, "sink", st.SinkURL)
	}
	return nil
}
