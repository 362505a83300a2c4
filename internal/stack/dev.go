package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	kconnect "github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/web"
)

// DefaultConnector is the connector Run creates at its first start to
// store the users: what the stream does, as a Kafka Connect connector.
const DefaultConnector = "users-sqlite"

// Errors of Run that say which listener was busy; each matches the listen
// error as well.
var (
	ErrWebAddr     = errors.New("web address")
	ErrConnectAddr = errors.New("kafka connect address")
)

// Dev is what Run runs on top of the stack's parts: every role of
// `userstream dev`. Zero fields take the defaults in brackets.
type Dev struct {
	// DAGs the scheduler runs (Producing builds them); the status line
	// follows the first one's runs. At least one.
	DAGs []*scheduler.DAG
	// MetadataURL is the scheduler's store [sqlite:DataDir/meta.db].
	MetadataURL string
	// AdminPassword sets the admin login's (empty: keep the stored one, or
	// generate one at the first start, printed once to Stdout);
	// ViewerPassword, when set, adds the read-only login "viewer".
	AdminPassword, ViewerPassword string
	// Listen addresses, each "" for off: the web UI (with the scheduler's
	// REST API), /metrics with /healthz, and a Kafka Connect worker whose
	// DefaultConnector stores the users (off: a stream does).
	WebAddr, MetricsAddr, ConnectAddr string
	// StatusEvery is how often the status line is printed [5s].
	StatusEvery time.Duration
	// Stdout gets where to look, the status lines and the stopped line
	// [io.Discard].
	Stdout io.Writer
}

// Producing is what the stack's DAGs produce with: its API, its encoder,
// producers to its Kafka.
func (s *Stack) Producing() (ingestdag.Producing, error) {
	src, err := s.Source()
	if err != nil {
		return ingestdag.Producing{}, err
	}
	return ingestdag.Producing{Source: src, SourceName: s.APIURL, Encoder: s.Encoder, Logger: s.log,
		Producer: func(ctx context.Context) (*kgo.Client, error) { return s.Producer(ctx) }}, nil
}

// dev is one Run's state.
type dev struct {
	*Stack
	d        Dev
	prom     *prometheus.Registry
	metrics  *stream.Metrics
	group    string // the sink's runner's consumer group
	connect  net.Listener
	sched    atomic.Pointer[scheduler.Scheduler]
	metadata string
}

// Run runs every role on the stack until ctx ends or one of them fails: the
// scheduler with d.DAGs, the stream or a Connect worker with its default
// connector into the stack's sink, the web UI, metrics and health, and a
// status line every d.StatusEvery. It prints where to look first and what
// is stored last. A busy address matches ErrWebAddr, ErrConnectAddr or
// ErrMetricsAddr. Run does not close the stack.
func (s *Stack) Run(ctx context.Context, d Dev) (err error) {
	if len(d.DAGs) == 0 {
		return errors.New("stack: Run needs a DAG")
	}
	d.Stdout = cmp.Or[io.Writer](d.Stdout, io.Discard)
	d.StatusEvery = cmp.Or(d.StatusEvery, 5*time.Second)
	r := &dev{Stack: s, d: d, metadata: cmp.Or(d.MetadataURL, "sqlite:"+filepath.Join(s.dataDir, "meta.db")),
		group: stream.DefaultGroup, prom: prometheus.NewRegistry()}
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.metrics = stream.NewMetrics(r.prom)

	// The listeners are taken before anything runs, so a busy port fails
	// the start rather than later; the web one answers 503 until the UI is
	// built.
	if d.ConnectAddr != "" {
		if r.connect, err = net.Listen("tcp", d.ConnectAddr); err != nil {
			return &addrError{ErrConnectAddr, fmt.Errorf("kafka connect: listen on %s: %w", d.ConnectAddr, err)}
		}
		defer r.connect.Close()
		r.group = kconnect.GroupOf(DefaultConnector)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ui atomic.Pointer[web.Server]
	var webLn net.Listener
	if d.WebAddr != "" {
		if webLn, err = net.Listen("tcp", d.WebAddr); err != nil {
			return &addrError{ErrWebAddr, fmt.Errorf("web: listen on %s: %w", d.WebAddr, err)}
		}
		Serve(ctx, s.log, webLn, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if h := ui.Load(); h != nil {
				h.ServeHTTP(w, req)
				return
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, "userstream dev is starting", http.StatusServiceUnavailable)
		}))
	}

	// The sink's runner: the Connect worker's default connector, or, with
	// Connect off, the stream itself.
	runner := "stream"
	runDone := make(chan error, 1)
	if r.connect != nil {
		runner = "connect worker"
		if err := r.startConnect(ctx, runDone); err != nil {
			return err
		}
	} else {
		go func() {
			sr := s.streamRun(stream.Config{Group: r.group, Logger: s.log, Metrics: r.metrics})
			sr.Prometheus, sr.MetricsAddr = r.prom, d.MetricsAddr
			runDone <- RunStream(ctx, sr)
		}()
	}

	ready := make(chan struct{})
	schedDone := make(chan error, 1)
	go func() { schedDone <- r.runScheduler(ctx, ready) }()
	select {
	case <-ready:
	case err := <-schedDone:
		cancel()
		<-runDone
		return err
	}
	if webLn != nil {
		sc := r.sched.Load()
		p := UI{Kafka: s.Kafka, RegistryURL: s.RegistryURL, Sink: s.Sink, Service: sc.Service(), Logins: sc.Store(),
			Group: r.group, Latency: r.metrics.Latency, Errors: s.Errors, Heartbeat: sc.LastTick, Logger: s.log}
		if r.connect != nil {
			p.ConnectURL = "http://" + r.connect.Addr().String()
		}
		h, closeUI, err := NewUI(ctx, p)
		if err != nil {
			cancel()
			<-runDone
			<-schedDone
			return err
		}
		defer closeUI()
		ui.Store(h)
	}
	r.banner(webLn)

	stopped := func() {
		if n, err := s.Sink.Count(context.WithoutCancel(ctx)); err == nil {
			fmt.Fprintf(d.Stdout, "userstream dev stopped: %d users stored (data in %s); a second start resumes.\n", n, s.dataDir)
		} else {
			fmt.Fprintf(d.Stdout, "userstream dev stopped (data in %s); a second start resumes.\n", s.dataDir)
		}
	}
	statusErr := make(chan error, 1)
	go func() { statusErr <- r.statusLines(ctx) }()
	select {
	case err := <-runDone:
		cancel()
		<-schedDone
		if err != nil {
			return fmt.Errorf("%s: %w", runner, err)
		}
	case err := <-schedDone:
		cancel()
		<-runDone
		if err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
	case err := <-statusErr:
		cancel()
		<-runDone
		<-schedDone
		if err != nil {
			return err
		}
	}
	stopped()
	return nil
}

// runScheduler opens the metadata store with its logins, runs the
// scheduler (its first tick at once: dev is the only scheduler on its
// store, and its first row then comes in under a second), closes ready
// once it runs, and stops it when ctx ends.
func (r *dev) runScheduler(ctx context.Context, ready chan<- struct{}) error {
	st, err := OpenLogins(ctx, r.metadata, r.d.AdminPassword, r.d.ViewerPassword, r.d.Stdout)
	if err != nil {
		return err
	}
	defer st.Close()
	sc, err := scheduler.New(scheduler.Config{Store: st, DAGs: r.d.DAGs, Logger: r.log})
	if err != nil {
		return err
	}
	if err := sc.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := sc.Stop(sctx); err != nil {
			r.log.Warn("scheduler stop", "err", err)
		}
	}()
	r.log.Info("scheduler started", "dags", scheduler.DAGList(r.d.DAGs), "metadata", redact.URL(r.metadata), "hostname", sc.Hostname())
	r.sched.Store(sc)
	close(ready)
	<-ctx.Done()
	return nil
}

// startConnect starts the Connect worker on r.connect with the stack's
// sink as its default connector, serves /metrics and /healthz for it (the
// tasks' health and the connector group's lag), and sends Run's result to
// done. The default connector is created unless the config topic ever held
// it (a connector the user deleted stays deleted); a data dir whose users a
// stream stored takes over the stream group's offsets, so nothing is read
// twice.
func (r *dev) startConnect(ctx context.Context, done chan<- error) error {
	meta, err := stores.Open(ctx, r.metadata)
	if err != nil {
		return fmt.Errorf("connect worker: %w", err)
	}
	context.AfterFunc(ctx, func() { meta.Close() })
	w, err := NewConnectWorker(ctx, ConnectWorker{Listener: r.connect, Logins: meta, Kafka: r.Kafka, RegistryURL: r.RegistryURL, Logger: r.log,
		Config: kconnect.WorkerConfig{
			Metrics: r.metrics,
			// The default connector's URL is the stack's sink: one handle,
			// so one page cache, which the UI and the status line read too.
			OpenSink: func(ctx context.Context, url string) (stream.Sink, func() error, error) {
				if url == r.SinkURL {
					return r.Sink, func() error { return nil }, nil
				}
				return openSink(ctx, url)
			},
		}})
	if err != nil {
		return fmt.Errorf("connect worker: %w", err)
	}
	go func() { done <- w.Run(ctx) }()

	admCl, err := broker.NewClient(ctx, r.Kafka)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, admCl.Close)
	adm := kadm.NewClient(admCl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A refusal (the group has members already) costs a re-read, not data.
	if n, err := broker.AdoptOffsets(cctx, adm, stream.DefaultGroup, r.group, broker.Topic); err != nil {
		r.log.Warn("connector could not take over the stream's offsets; it reads the topic from its start (upserts: no duplicate rows)", "err", err)
	} else if n > 0 {
		r.log.Info("connector takes over the stream's offsets", "connector", DefaultConnector, "from_group", stream.DefaultGroup, "partitions", n)
	}
	h := stream.NewHealth(0, 0)
	go stream.TrackLag(ctx, adm, r.group, broker.Topic, r.metrics.Lag, h, r.log)
	if r.d.MetricsAddr != "" {
		if _, err := serveMetrics(ctx, r.log, r.d.MetricsAddr, r.prom, func() error { return errors.Join(w.Check(), h.Check()) }); err != nil {
			return err
		}
	}

	cfg := map[string]string{
		"connector.class": kconnect.ClassJDBC, "tasks.max": "1", "topics": broker.Topic,
		"connection.url": "jdbc:" + r.SinkURL, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
		"table.name.format": kconnect.Table, "auto.create": "true",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": broker.DLQTopic,
		"errors.deadletterqueue.context.headers.enable": "true",
	}
	if r.format == schema.FormatJSON {
		cfg["value.converter"] = "org.apache.kafka.connect.json.JsonConverter"
		cfg["value.converter.schemas.enable"] = "false"
	}
	created, err := w.CreateOnce(cctx, DefaultConnector, cfg)
	if err != nil {
		return fmt.Errorf("connect worker: create connector %s: %w", DefaultConnector, err)
	}
	if created {
		r.log.Info("connector created", "connector", DefaultConnector, "sink", redact.URL(r.SinkURL))
	}
	return nil
}

// banner prints where to look.
func (r *dev) banner(webLn net.Listener) {
	connectURL, metricsURL, webURL := "off", "off", "off"
	if r.connect != nil {
		connectURL = "http://" + r.connect.Addr().String() + "/connectors   (Kafka Connect's REST API; connector " + DefaultConnector + " stores the users)"
	}
	if r.d.MetricsAddr != "" {
		metricsURL = "http://" + r.d.MetricsAddr + "/metrics"
	}
	if webLn != nil {
		webURL = "http://" + webLn.Addr().String() + "/   (user admin; Airflow's REST API under /api/v1/)"
	}
	brokers := strings.Join(r.Kafka.Brokers, ",")
	dag := r.d.DAGs[0]
	fmt.Fprintf(r.d.Stdout, `userstream dev is running (data in %s)
  Kafka             %s   (kcat -b %s -L)
  Schema Registry   %s
  Random User API   %s?results=5
  scheduler         %s, %s
  web UI            %s
  Kafka Connect     %s
  metrics           %s
  users             userstream users count --sink %s
  runs              userstream dags runs %s --metadata %s
Ctrl-C stops; a second start resumes where this one left off.
`, r.dataDir, brokers, brokers, cmp.Or(redact.URL(r.RegistryURL), "none (plain JSON)"), r.APIURL, dag.DagID, scheduler.ScheduleLabel(dag.Schedule),
		webURL, connectURL, metricsURL, redact.URL(r.SinkURL), dag.DagID, redact.URL(r.metadata))
}

// statusLines prints the status line every StatusEvery until ctx ends:
// users in the topic and stored, the lag of the sink's runner's group, the
// rate of storing and the first DAG's last run.
func (r *dev) statusLines(ctx context.Context) error {
	prod, err := r.Producer(ctx)
	if err != nil {
		return err
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	t := time.NewTicker(r.d.StatusEvery)
	defer t.Stop()
	// The rate counts from what the sink held at start, so the first line
	// has one too; "in topic" is the topic's total, like "stored".
	lastStored, _ := r.Sink.Count(ctx)
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		stored, err := r.Sink.Count(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("status: count failed", "err", err)
			}
			continue
		}
		gl, _ := broker.GroupOffsets(ctx, adm, r.group, broker.Topic)
		var inTopic int64
		if ends, err := adm.ListEndOffsets(ctx, broker.Topic); err == nil {
			ends.Each(func(o kadm.ListedOffset) { inTopic += o.Offset })
		}
		now := time.Now()
		rate := float64(stored-lastStored) / now.Sub(lastAt).Seconds()
		lastStored, lastAt = stored, now
		fmt.Fprintf(r.d.Stdout, "%s in topic %d, stored %d, lag %d, %.0f users/s, %s\n",
			now.Format("15:04:05"), inTopic, stored, gl.Lag, rate, r.lastRun(ctx))
	}
}

// lastRun describes the first DAG's newest run for the status line.
func (r *dev) lastRun(ctx context.Context) string {
	sc := r.sched.Load()
	if sc == nil {
		return "no run yet"
	}
	dagID := r.d.DAGs[0].DagID
	runs, total, err := sc.Store().ListRuns(ctx, scheduler.RunFilter{DagID: dagID, OrderBy: "-logical_date", Limit: 1})
	if err != nil || len(runs) == 0 {
		return "no run yet"
	}
	return fmt.Sprintf("last run %s %s (%d runs)", runs[0].RunID, runs[0].State, total)
}
