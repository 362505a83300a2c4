package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
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
--brokers runs it all against an outside Kafka cluster instead of the embedded
broker (users_created and its DLQ are created with the cluster's default
replication factor when missing), --schema-registry against an outside
registry (none: plain JSON, no registry).
Ctrl-C stops cleanly; a second start on the same --data-dir resumes with no loss
and no duplicate rows.`,
		Example: `  userstream dev
  userstream dev --brokers kafka1:9092,kafka2:9092 --schema-registry http://registry:8081
  userstream dev --brokers 127.0.0.1:9092 --schema-registry none`,
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
			if len(c.kafka.Brokers) == 0 {
				for _, f := range []string{"tls", "tls-ca", "tls-cert", "tls-key", "tls-insecure", "sasl-mechanism", "sasl-user", "sasl-password"} {
					if cmd.Flags().Changed(f) {
						return usagef("--%s needs --brokers: the embedded broker speaks plain Kafka on --kafka-addr", f)
					}
				}
			}
			if c.registry == "none" && !cmd.Flags().Changed("format") {
				c.format = schema.FormatJSON
			}
			if c.format != schema.FormatAvro && c.format != schema.FormatJSON {
				return usagef("--format: %q is not avro or json", c.format)
			}
			if c.registry != "" {
				if err := (&codecFlags{registry: c.registry, format: c.format}).validate(); err != nil {
					return err
				}
			}
			if _, err := c.dags.specs(); err != nil {
				return err
			}
			return runDev(cmd.Context(), a, c)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.dataDir, "data-dir", "./data", "where the broker log (kafka/), schemas (schemas/), users (users.db) and run metadata (meta.db) live")
	fs.StringVar(&c.kafkaAddr, "kafka-addr", broker.DefaultEmbeddedAddr, "embedded Kafka listener (not used with --brokers)")
	addKafkaFlags(fs, &c.kafka)
	fs.Lookup("brokers").Usage = "an outside Kafka cluster's seed brokers, comma separated host:port list (empty: the embedded broker on --kafka-addr)"
	fs.StringVar(&c.registry, "schema-registry", "", "an outside Schema Registry's URL (empty: the embedded one on --registry-addr; none: plain JSON, no registry)")
	fs.StringVar(&c.apiAddr, "api-addr", randomuser.DefaultAddr, "built-in Random User API listener")
	fs.StringVar(&c.registryAddr, "registry-addr", schema.DefaultRegistryAddr, "embedded Schema Registry listener (not used with --schema-registry)")
	fs.StringVar(&c.webAddr, "web-addr", "127.0.0.1:8080", "the scheduler's REST API (Airflow's port; empty: off)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", stream.DefaultMetricsAddr, "Prometheus /metrics and /healthz of the stream (empty: off)")
	fs.StringVar(&c.connectAddr, "connect-addr", "127.0.0.1:8083", "a Kafka Connect worker's REST API (Connect's port); its connector users-sqlite stores the users (empty: no worker, a stream stores them)")
	fs.StringVar(&c.format, "format", "avro", "message format the producer writes: avro or json (json with --schema-registry none)")
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
	viewer, connectAddr, registry                                                     string
	kafka                                                                             broker.Config
	interval, statusEvery                                                             time.Duration
	dags                                                                              dagFlags
	retention                                                                         retentionFlags
}

// runDev starts the stack and runs every role on it until ctx ends.
func runDev(ctx context.Context, a *app, c devConfig) error {
	st, err := stack.Start(ctx, stack.Config{DataDir: c.dataDir, KafkaAddr: c.kafkaAddr, RegistryAddr: c.registryAddr,
		APIAddr: c.apiAddr, Kafka: c.kafka, RegistryURL: c.registry, Format: c.format, Retention: c.retention.retention, RetentionBytes: c.retention.bytes, Logger: a.log})
	if err != nil {
		return devErr(err)
	}
	defer st.Close()
	p, err := st.Producing()
	if err != nil {
		return err
	}
	dags, err := c.dags.buildDAGs(p)
	if err != nil {
		return err
	}
	return devErr(st.Run(ctx, stack.Dev{DAGs: dags, AdminPassword: c.password, ViewerPassword: c.viewer,
		WebAddr: c.webAddr, MetricsAddr: c.metricsAddr, ConnectAddr: c.connectAddr, StatusEvery: c.statusEvery, Stdout: a.stdout}))
}

// devErr names dev's flag for a busy address.
func devErr(err error) error {
	const other = "pass another address, or an empty one to turn it off"
	switch {
	case errors.Is(err, stack.ErrKafkaAddr):
		return brokerStartErr(err, "--kafka-addr")
	case errors.Is(err, stack.ErrRegistryAddr):
		return fmt.Errorf("%w (--registry-addr)", err)
	case errors.Is(err, stack.ErrAPIAddr):
		return fmt.Errorf("%w (pass another --api-addr)", err)
	case errors.Is(err, stack.ErrWebAddr):
		return fmt.Errorf("--web-addr: %w (%s)", err, other)
	case errors.Is(err, stack.ErrConnectAddr):
		return fmt.Errorf("--connect-addr: %w (%s)", err, other)
	case errors.Is(err, stack.ErrMetricsAddr):
		return fmt.Errorf("--metrics-addr: %w (%s)", err, other)
	}
	return kafkaUsage(err)
}
