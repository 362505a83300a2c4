package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
)

// Scheduler is what a scheduler process runs with: `userstream scheduler`
// fills it from its flags.
type Scheduler struct {
	// Metadata is the metadata store's URL; AdminPassword and
	// ViewerPassword its logins (see OpenLogins).
	Metadata                      string
	AdminPassword, ViewerPassword string
	// Addr serves Airflow's REST APIs (restapi.Prefixes) and /metrics;
	// "": not served.
	Addr     string
	DAGs     []*scheduler.DAG
	Workers  int    // task tries at once [scheduler.DefaultWorkers]
	Hostname string // recorded on the tries [the host name]
	// Stdout gets the admin's generated password, once [discard].
	Stdout io.Writer
	Logger *slog.Logger // [discard]
}

// Errors of RunScheduler about its input, not failures: DAGs or settings
// the scheduler refuses, and an Addr it cannot listen on (matching the
// listen error as well).
var (
	ErrSchedulerConfig = errors.New("scheduler configuration")
	ErrSchedulerAddr   = errors.New("REST API address")
)

// RunScheduler opens the metadata store with its logins, starts the
// scheduler, serves its REST APIs and metrics on c.Addr until ctx ends,
// then stops the scheduler (within 30 s).
func RunScheduler(ctx context.Context, c Scheduler) error {
	log := cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	st, err := OpenLogins(ctx, c.Metadata, c.AdminPassword, c.ViewerPassword, cmp.Or[io.Writer](c.Stdout, io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		scheduler.NewRunStateCollector(st))
	s, err := scheduler.New(scheduler.Config{Store: st, DAGs: c.DAGs, Logger: log, Metrics: scheduler.NewMetrics(reg),
		Workers: c.Workers, Hostname: c.Hostname})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSchedulerConfig, err)
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.Stop(sctx); err != nil {
			log.Warn("scheduler stop", "err", err)
		}
	}()
	api := restapi.New(s.Service(), login.New(st), restapi.Options{Logger: log, Heartbeat: s.LastTick})
	mux := http.NewServeMux()
	for _, p := range restapi.Prefixes {
		mux.Handle(p, api)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	addr := c.Addr
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%w %s: %w", ErrSchedulerAddr, addr, err)
		}
		addr = ln.Addr().String()
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("rest api server", "err", err)
			}
		}()
		defer srv.Close()
	}
	log.Info("scheduler started", "dags", scheduler.DAGList(c.DAGs), "metadata", redact.URL(c.Metadata), "api", addr, "hostname", s.Hostname())
	<-ctx.Done()
	return nil
}
