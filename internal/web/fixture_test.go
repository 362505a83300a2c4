package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/web"
)

// sampleEvery is the fixture's interval of the charts' series.
const sampleEvery = 500 * time.Millisecond

const (
	adminPassword  = "admin-secret-1"
	viewerPassword = "viewer-secret-1"
)

// fixture is the real in-process stack (embedded broker, registry,
// built-in API, SQLite sink), a scheduler with user_automation on a SQLite
// metadata store, and the UI over all of it on an httptest server.
type fixture struct {
	st      *stack.Stack
	meta    scheduler.Store
	sched   *scheduler.Scheduler
	metrics *stream.Metrics
	errs    *web.ErrorLog
	log     *slog.Logger
	url     string // the UI, http://127.0.0.1:PORT
	// connect is the Kafka Connect worker's REST API (withConnect), and
	// connectSrv its server, to take it down.
	connect    string
	connectSrv *httptest.Server
}

// fixtureOption changes how the fixture is built.
type fixtureOption func(*fixtureConfig)

type fixtureConfig struct {
	source     func(ingest.Source) ingest.Source
	sourceName string
	connect    bool
	sinkURL    string
}

// withSink stores the users in the sink at url instead of SQLite.
func withSink(url string) fixtureOption { return func(c *fixtureConfig) { c.sinkURL = url } }

// withConnect runs a real Kafka Connect worker on the stack's broker, its
// REST API checking the metadata store's logins, and the UI's Connect
// pages on it.
func withConnect() fixtureOption { return func(c *fixtureConfig) { c.connect = true } }

// withSource wraps the built-in API the DAG fetches from.
func withSource(wrap func(ingest.Source) ingest.Source, name string) fixtureOption {
	return func(c *fixtureConfig) { c.source, c.sourceName = wrap, name }
}

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	fc := fixtureConfig{sourceName: "builtin"}
	for _, o := range opts {
		o(&fc)
	}
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{errs: &web.ErrorLog{}}
	f.log = slog.New(f.errs.Handler(slog.DiscardHandler))
	cfg := stack.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0",
		APIAddr: "127.0.0.1:0", Logger: f.log, SinkURL: fc.sinkURL}
	// The pages on the broker USERSTREAM_TEST_BROKER names: the embedded
	// one by default, else a real Apache Kafka cluster.
	if kind := enginestest.BrokerKind(t); kind != enginestest.Embedded {
		cfg.Kafka = broker.Config{Brokers: enginestest.StartKafka(t, enginestest.KafkaOptions(kind)...).Brokers}
	}
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st

	var src ingest.Source
	if src, err = st.Source(); err != nil {
		t.Fatal(err)
	}
	if fc.source != nil {
		src = fc.source(src)
	}
	sp := ingestdag.UserAutomation()
	sp.Schedule, sp.UsersPerRun, sp.RunDuration, sp.RetryDelay = "none", 200, "", "10ms"
	dag, err := sp.Build(ingestdag.Producing{Source: src, SourceName: fc.sourceName, Encoder: st.Encoder, BatchSize: 100,
		Producer: func(ctx context.Context) (*kgo.Client, error) { return st.Producer(ctx) }})
	if err != nil {
		t.Fatal(err)
	}
	if f.meta, err = sqlite.Open(ctx, "sqlite:"+filepath.Join(dir, "meta.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.meta.Close() })
	for _, u := range []struct {
		name     string
		role     login.Role
		password string
	}{
		{login.AdminUser, login.RoleAdmin, adminPassword},
		{login.ViewerUser, login.RoleViewer, viewerPassword},
	} {
		if _, err := login.EnsureUser(ctx, f.meta, u.name, u.role, u.password); err != nil {
			t.Fatal(err)
		}
	}
	if f.sched, err = scheduler.New(scheduler.Config{Store: f.meta, DAGs: []*scheduler.DAG{dag}, TickEvery: 200 * time.Millisecond,
		Logger: f.log}); err != nil {
		t.Fatal(err)
	}
	if err := f.sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.sched.Stop(sctx)
	})

	adm, err := broker.NewAdmin(ctx, st.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	cl, err := schema.NewClient(st.Registry.URL())
	if err != nil {
		t.Fatal(err)
	}
	f.metrics = stream.NewMetrics(prometheus.NewRegistry())
	auth := login.New(f.meta)
	svc := f.sched.Service()
	var conn *web.Connect
	if fc.connect {
		f.startConnect(t, auth)
		if conn, err = web.NewConnect(f.connect); err != nil {
			t.Fatal(err)
		}
	}
	pipe := &web.Pipeline{Kafka: adm, Users: st.Sink, Topic: broker.Topic, DLQ: broker.DLQTopic, Group: stream.DefaultGroup, Latency: f.metrics.Latency, Errors: f.errs}
	// Sampled every 500 ms, so that charts fill within seconds.
	series := web.NewSeries(pipe, sampleEvery, 0)
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); series.Run(sctx) }()
	t.Cleanup(func() { stopSampling(); <-sampled })
	ui, err := web.New(web.Config{Kafka: adm, Connect: conn, Registry: web.NewRegistry(cl), Users: st.Sink, Service: svc, Auth: auth,
		API:      restapi.New(svc, auth, restapi.Options{Logger: f.log, Heartbeat: f.sched.LastTick}),
		Pipeline: pipe, Series: series,
		Topic: broker.Topic, DLQ: broker.DLQTopic, Group: stream.DefaultGroup, Logger: f.log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// startStream runs the stream into the stack's sink until the returned
// stop is called (or the test ends).
func (f *fixture) startStream(t testing.TB) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.st.RunStream(ctx, stream.Config{BatchWait: 20 * time.Millisecond, Metrics: f.metrics, Logger: f.log,
			SessionTimeout: 6 * time.Second})
	}()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("stream: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// produce sends n users of the built-in API to users_created.
func (f *fixture) produce(t testing.TB, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src, err := f.st.Source()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := f.st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := ingest.Run(ctx, src, prod, f.st.Encoder, ingest.Config{Users: n, BatchSize: 250, SourceName: "builtin"}); err != nil {
		t.Fatal(err)
	}
}

// produceRaw sends one record as it is (a poison message, a hostile key).
func (f *fixture) produceRaw(t testing.TB, topic string, key, value []byte, headers map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod, err := f.st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r := &kgo.Record{Topic: topic, Key: key, Value: value}
	for k, v := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitStored waits until the sink holds want users, failing at once when
// it holds more.
func (f *fixture) waitStored(t testing.TB, want int64, within time.Duration) {
	t.Helper()
	testwait.For(t, within, fmt.Sprintf("%d users in the sink", want), func() (int64, bool) {
		n, err := f.st.Sink.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n > want {
			t.Fatalf("the sink holds %d users, more than %d", n, want)
		}
		return n, n == want
	})
}

// client is a browser-like HTTP client of the UI: a cookie jar, redirects
// not followed (tests look at them).
type client struct {
	t    testing.TB
	base string
	http *http.Client
}

func (f *fixture) client(t testing.TB) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: f.url, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// loggedIn returns a client logged in as user.
func (f *fixture) loggedIn(t testing.TB, user, password string) *client {
	t.Helper()
	c := f.client(t)
	resp := c.post("/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login as %s: %d %s", user, resp.StatusCode, resp.body)
	}
	return c
}

// response is an answer with its body read.
type response struct {
	*http.Response
	body string
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{resp, string(b)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

func (c *client) post(path string, form url.Values) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// csrf reads the session's CSRF token from a page.
func (c *client) csrf() string {
	c.t.Helper()
	resp := c.get("/dags")
	m := csrfMeta.FindStringSubmatch(resp.body)
	if m == nil {
		c.t.Fatalf("no CSRF token on /dags (%d): %.300s", resp.StatusCode, resp.body)
	}
	return m[1]
}

// hostile is a source whose users carry XSS payloads in their names.
type hostile struct{ ingest.Source }

const (
	xssFirst = `<script>window.__xss=1</script>`
	xssLast  = `"><img src=x onerror="window.__xss=2">`
)

func (h hostile) Get(ctx context.Context, p randomuser.Params) (randomuser.Response, error) {
	r, err := h.Source.Get(ctx, p)
	for i := range r.Results {
		r.Results[i].Name.First = xssFirst
		r.Results[i].Name.Last = fmt.Sprintf("%s%d", xssLast, i)
	}
	return r, err
}
