package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/member"
	"github.com/userstream/userstream/internal/stream"
)

// ErrMetricsAddr is matched by the error of a busy metrics address, with
// the listen error.
var ErrMetricsAddr = errors.New("metrics address")

// StreamRun is one stream worker: the Kafka it reads, what it opens, what
// it serves. `userstream stream`, `dev`, bench and tests all run the
// stream through RunStream.
type StreamRun struct {
	Kafka broker.Config
	// Config is the stream's; a nil Health gets stream.NewHealth(0, 0), a
	// nil Logger the discard logger.
	Config stream.Config
	// Partitions of users_created and its DLQ when they have to be created
	// [broker.DefaultPartitions]; their replication is the cluster's
	// default.
	Partitions int32
	// Prometheus, when set, gets franz-go's client metrics; MetricsAddr,
	// when set, serves its /metrics with /healthz (the Health's Check).
	Prometheus  *prometheus.Registry
	MetricsAddr string
	// OpenSink opens the sink and says how to close it; OpenDecoder opens
	// what the worker reads with, after the sink (h is the stream's
	// Health, to say it waits for a registry).
	OpenSink    func(ctx context.Context) (stream.Sink, func() error, error)
	OpenDecoder func(ctx context.Context, h *stream.Health) (stream.Decoder, error)
	// SinkName names the sink in logs; it must hold no secret.
	SinkName string
	// Extra options of the consumer's client (tests).
	Extra []kgo.Opt
}

// RunStream connects, creates the topics when missing, serves metrics and
// health, opens the sink and the decoder (in that order, so a wrong Kafka
// address is the first thing a user hears of), keeps the lag gauge and the
// health's lag fresh, and runs the stream until ctx ends. A decoder that
// cannot open because ctx ended is a clean stop (nil).
func RunStream(ctx context.Context, r StreamRun) error {
	cfg := r.Config
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.Group = cmp.Or(cfg.Group, stream.DefaultGroup)
	if cfg.Health == nil {
		cfg.Health = stream.NewHealth(0, 0)
	}
	log := cfg.Logger
	id, release := member.ForGroup(log, cfg.Group, cfg.InstanceID)
	defer release()
	cfg.InstanceID = id
	kc := r.Kafka
	// The group's members then say what they are (franz-go's default is
	// "kgo"); a static member's instance id tells workers apart.
	kc.ClientID = cmp.Or(kc.ClientID, strings.TrimSuffix("userstream-stream-"+cfg.InstanceID, "-"))
	opts := stream.ConsumerOpts(cfg)
	if r.Prometheus != nil {
		// franz-go's own client metrics: requests, bytes, records, errors
		// by broker; one hook for every client the stream dials.
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("userstream_kafka", kprom.Registry(r.Prometheus))))
	}
	opts = append(opts, r.Extra...)
	// A client of its own for topics and lag: the consumer's is replaced
	// when the stream rejoins.
	admCl, err := broker.NewClient(ctx, kc)
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	rep, err := broker.EnsureTopics(ctx, adm, cmp.Or(r.Partitions, broker.DefaultPartitions), -1, broker.Topic, broker.DLQTopic)
	broker.LogEnsured(log, rep)
	if err != nil {
		return err
	}
	if r.MetricsAddr != "" {
		stop, err := serveMetrics(ctx, log, r.MetricsAddr, r.Prometheus, cfg.Health.Check)
		if err != nil {
			return err
		}
		defer stop()
	}
	var gauge prometheus.Gauge
	if cfg.Metrics != nil {
		gauge = cfg.Metrics.Lag
	}
	go stream.TrackLag(ctx, adm, cfg.Group, broker.Topic, gauge, cfg.Health, log)
	snk, closeSink, err := r.OpenSink(ctx)
	if err != nil {
		return err
	}
	defer closeSink()
	dec, err := r.OpenDecoder(ctx, cfg.Health)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	dial := func(ctx context.Context) (stream.Client, error) {
		cl, err := broker.NewClient(ctx, kc, opts...)
		if err != nil {
			return nil, err
		}
		return cl, nil
	}
	log.Info("stream started", "group", cfg.Group, "instance", cfg.InstanceID, "sink", r.SinkName, "metrics", r.MetricsAddr)
	err = stream.Run(ctx, dial, dec, snk, cfg)
	log.Info("stream stopped")
	return err
}

// serveMetrics serves reg's /metrics (when reg is set) and /healthz on addr
// until stop is called. /healthz answers 200 "ok", or 503 with what check
// says is wrong (see stream.Health). A busy addr matches ErrMetricsAddr.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string, reg *prometheus.Registry, check func() error) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &addrError{ErrMetricsAddr, fmt.Errorf("metrics: listen on %s: %w", addr, err)}
	}
	mux := http.NewServeMux()
	if reg != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
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
			log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
