package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/web"
)

// UI is what a web UI is built from: `userstream web` fills it from its
// flags, `dev` from its stack.
type UI struct {
	Kafka broker.Config
	// RegistryURL "" or "none": no Schemas page and no Avro decoding.
	RegistryURL string
	Sink        sink.Sink // nil: no users pages
	// Service and Logins (the metadata store) give the DAG pages, the
	// logins and Airflow's REST API; a nil Logins: none of them.
	Service *scheduler.Service
	Logins  login.Store
	Group   string // the stream's consumer group, for the overview
	Latency prometheus.Histogram
	Metrics []string // stream workers' /metrics URLs, for the latency
	// SampleEvery is how often the charts' series are sampled; 0:
	// web.DefaultSampleEvery.
	SampleEvery time.Duration
	// ConnectURL is a Kafka Connect REST API's URL, for the Connect page;
	// "": none.
	ConnectURL string
	Secure     bool // session cookies Secure (a TLS proxy in front)
	Errors     *web.ErrorLog
	Heartbeat  func() time.Time
	Logger     *slog.Logger // [discard]
}

// NewUI connects to Kafka and the registry, starts sampling the charts'
// series, and returns the UI's handler and what to close after it (which
// stops the sampling).
func NewUI(ctx context.Context, p UI) (*web.Server, func(), error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	adm, err := broker.NewAdmin(ctx, p.Kafka)
	if err != nil {
		return nil, nil, err
	}
	var reg *web.Registry
	if p.RegistryURL != "" && p.RegistryURL != "none" {
		cl, err := schema.NewClient(p.RegistryURL)
		if err != nil {
			adm.Close()
			return nil, nil, fmt.Errorf("web: schema registry: %w", err)
		}
		reg = web.NewRegistry(cl)
	}
	cfg := web.Config{Kafka: adm, Registry: reg, Topic: broker.Topic, DLQ: broker.DLQTopic, Group: p.Group, Logger: p.Logger, Secure: p.Secure,
		Pipeline: &web.Pipeline{Kafka: adm, Topic: broker.Topic, DLQ: broker.DLQTopic, Group: p.Group, Latency: p.Latency, Metrics: p.Metrics, Errors: p.Errors}}
	if p.Sink != nil {
		cfg.Users, cfg.Pipeline.Users = p.Sink, p.Sink
	}
	if p.ConnectURL != "" {
		if cfg.Connect, err = web.NewConnect(p.ConnectURL); err != nil {
			adm.Close()
			return nil, nil, fmt.Errorf("web: Kafka Connect URL %q: %w", redact.URL(p.ConnectURL), err)
		}
	}
	if p.Logins != nil {
		cfg.Service, cfg.Auth = p.Service, login.New(p.Logins)
		cfg.API = restapi.New(p.Service, cfg.Auth, restapi.Options{Logger: p.Logger, Heartbeat: p.Heartbeat})
	}
	cfg.Series = web.NewSeries(cfg.Pipeline, p.SampleEvery, 0)
	s, err := web.New(cfg)
	if err != nil {
		adm.Close()
		return nil, nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); cfg.Series.Run(sctx) }()
	return s, func() { stop(); <-sampled; adm.Close() }, nil
}

// Serve serves h on ln until ctx ends, then shuts down within 2 s.
func Serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web server", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
}
