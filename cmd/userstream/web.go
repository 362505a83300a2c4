package main

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/web"
)

func newWebCmd(a *app) *cobra.Command {
	var (
		kc       = broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}}
		codec    codecFlags
		addr     string
		sinkURL  string
		metadata string
		group    string
		password string
		viewer   string
		metrics  []string
		connURL  string
		secure   bool
		every    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "web",
		Short: "Serve the UI: topics, messages, consumer groups, schemas, Connect, DAGs and runs, users (Control Center, Spark's and Airflow's pages)",
		Long: `web serves one UI for what Control Center, the Spark master page and Airflow's
web server show: the pipeline's overview, topics and a message browser (Avro
decoded through the registry), consumer groups with lag and offset resets,
schemas, Kafka Connect's connectors (over its REST API, --connect-url), DAGs
with their runs and logs, and the sink's users; with a JSON twin
of each page under /api/ui/ and Airflow's REST API under /api/v1/.
Logins are the scheduler's (admin, viewer), kept in the metadata store.`,
		Example: `  userstream web --brokers broker:29092 --schema-registry http://schema-registry:8081 \
      --sink postgres://... --metadata postgres://...?schema=airflow`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := codec.validate(); err != nil {
				return err
			}
			if err := checkSinkURL(sinkURL); err != nil {
				return err
			}
			if every < 100*time.Millisecond {
				return usagef("--sample-every %s: want at least 100ms (the charts' interval, e.g. 5s)", every)
			}
			if connURL != "" {
				if _, err := web.NewConnect(connURL); err != nil {
					return usagef("--connect-url %q: %v", redact.URL(connURL), err)
				}
			}
			ctx := cmd.Context()
			st, err := openLogins(ctx, a, metadata, password, viewer)
			if err != nil {
				return err
			}
			defer st.Close()
			snk, err := openSinkReadOnly(ctx, sinkURL)
			if err != nil {
				return err
			}
			defer snk.Close()
			svc, err := scheduler.NewService(st, nil)
			if err != nil {
				return err
			}
			for _, m := range metrics {
				if u, err := url.Parse(m); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usagef("--stream-metrics %q: want an http(s) URL such as http://127.0.0.1:9464/metrics", redact.URL(m))
				}
			}
			ui, closeUI, err := stack.NewUI(ctx, stack.UI{Kafka: kc, RegistryURL: codec.registry, Sink: snk, Service: svc, Logins: st, Group: group,
				Metrics: metrics, SampleEvery: every, ConnectURL: connURL, Secure: secure, Logger: a.log})
			if err != nil {
				return kafkaUsage(err)
			}
			defer closeUI()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w (pass another address)", addr, err)
			}
			stack.Serve(ctx, a.log, ln, ui)
			a.log.Info("web UI listening", "url", "http://"+ln.Addr().String()+"/")
			<-ctx.Done()
			return nil
		},
	}
	fs := cmd.Flags()
	addKafkaFlags(fs, &kc)
	codec.addFlags(fs, false)
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "serve the UI here")
	fs.StringVar(&sinkURL, "sink", defaultSinkURL, "the users' sink (read only)")
	fs.StringVar(&metadata, "metadata", defaultMetadata, "the scheduler's metadata store: DAGs, runs and logins")
	fs.StringSliceVar(&metrics, "stream-metrics", []string{"http://" + stream.DefaultMetricsAddr + "/metrics"},
		"the stream workers' /metrics URLs (comma-separated), read for the overview's latency; empty: none")
	fs.StringVar(&connURL, "connect-url", "http://127.0.0.1:8083",
		"a Kafka Connect worker's REST API (ours or a JVM one), for the Connect page; empty: no Connect page")
	fs.DurationVar(&every, "sample-every", web.DefaultSampleEvery, "how often the charts sample the pipeline (an hour of points is kept)")
	fs.BoolVar(&secure, "secure-cookies", false, "mark the session cookie Secure: set it when a TLS proxy serves the UI")
	fs.StringVar(&group, "group", stream.DefaultGroup, "the stream's consumer group, for the overview")
	fs.StringVar(&password, "admin-password", "", "the admin login's password (prefer USERSTREAM_ADMIN_PASSWORD)")
	fs.StringVar(&viewer, "viewer-password", "", "create a read-only login \"viewer\" (prefer USERSTREAM_VIEWER_PASSWORD)")
	return cmd
}
