package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
	"github.com/userstream/userstream/internal/stack"
)

// defaultMetadata is where the metadata store lives unless told.
const defaultMetadata = "sqlite:./data/meta.db"

// dagFlags set the built-in user_automation DAG and add DAGs from a file;
// `scheduler` and `dev` share them.
type dagFlags struct {
	schedule, startDate, timezone  string
	catchup                        bool
	maxActive, retries, usersPerRn int
	retryDelay, runDuration        time.Duration
	execTimeout                    time.Duration
	nat                            []string
	rate                           float64
	file                           string
}

func (f *dagFlags) addFlags(fs *pflag.FlagSet, schedule string, usersPerRun int, runDuration time.Duration) {
	sp := ingestdag.UserAutomation()
	fs.StringVar(&f.schedule, "schedule", schedule, "schedule of user_automation: cron, @once, @hourly, @daily, @weekly, @monthly, @yearly, @every DURATION or none")
	fs.StringVar(&f.startDate, "start-date", sp.StartDate, "start_date of user_automation (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&f.timezone, "timezone", "UTC", "time zone the schedule is read in, e.g. Europe/Paris")
	fs.BoolVar(&f.catchup, "catchup", sp.Catchup, "create a run for every interval missed since the start date (or the last run)")
	fs.IntVar(&f.maxActive, "max-active-runs", sp.MaxActiveRuns, "most runs of user_automation at once")
	fs.IntVar(&f.retries, "retries", sp.Retries, "retries of a failed try")
	fs.DurationVar(&f.retryDelay, "retry-delay", 30*time.Second, "wait before a retry (doubling for each, up to 5m)")
	fs.DurationVar(&f.execTimeout, "execution-timeout", 0, "bound on one try (0: twice the run duration plus a minute, or 10m)")
	fs.IntVar(&f.usersPerRn, "users-per-run", usersPerRun, "users each run produces (0: bounded by --run-duration only)")
	fs.DurationVar(&f.runDuration, "run-duration", runDuration, "how long each run streams (0: bounded by --users-per-run only); the original streamed 60s")
	fs.StringSliceVar(&f.nat, "nat", nil, "nationalities each run asks for, e.g. fr,gb (empty: all)")
	fs.Float64Var(&f.rate, "rate", 0, "most users/s a run fetches (0: as fast as the source allows)")
	fs.StringVar(&f.file, "dags", "", "more DAGs from a YAML or JSON file (docs/operations.md)")
}

// specs returns the DAG specs: user_automation from the flags, then the
// file's.
func (f *dagFlags) specs() ([]ingestdag.Spec, error) {
	if f.usersPerRn < 0 {
		return nil, usagef("--users-per-run: %d is negative", f.usersPerRn)
	}
	if f.usersPerRn == 0 && f.runDuration <= 0 {
		return nil, usagef("--users-per-run and --run-duration are both 0: give at least one to bound a run")
	}
	sp := ingestdag.UserAutomation()
	sp.Schedule, sp.StartDate, sp.Catchup, sp.MaxActiveRuns, sp.Retries = f.schedule, f.startDate, f.catchup, f.maxActive, f.retries
	sp.RetryDelay, sp.UsersPerRun, sp.Nat, sp.Rate = f.retryDelay.String(), f.usersPerRn, f.nat, f.rate
	sp.RunDuration = ""
	if f.runDuration > 0 {
		sp.RunDuration = f.runDuration.String()
	}
	if f.execTimeout > 0 {
		sp.ExecutionTimeout = f.execTimeout.String()
	}
	if f.timezone != "UTC" {
		sp.Timezone = f.timezone
	}
	specs := []ingestdag.Spec{sp}
	if f.file != "" {
		more, err := ingestdag.LoadFile(f.file)
		if err != nil {
			return nil, usageError{fmt.Errorf("--dags: %w", err)}
		}
		specs = append(specs, more...)
	}
	return specs, nil
}

// buildDAGs builds the DAGs; a spec that does not build is wrong usage
// naming the flag behind it.
func (f *dagFlags) buildDAGs(p ingestdag.Producing) ([]*scheduler.DAG, error) {
	specs, err := f.specs()
	if err != nil {
		return nil, err
	}
	var dags []*scheduler.DAG
	for i, sp := range specs {
		d, err := sp.Build(p)
		if err != nil {
			if i == 0 {
				return nil, usagef("%v (set by --schedule, --start-date, --timezone, --retries, --users-per-run, --run-duration, --nat)", err)
			}
			return nil, usagef("--dags %s: %v", f.file, err)
		}
		dags = append(dags, d)
	}
	return dags, nil
}

func newSchedulerCmd(a *app) *cobra.Command {
	var (
		kc       = broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}}
		codec    codecFlags
		df       dagFlags
		metadata string
		source   string
		addr     string
		password string
		viewer   string
		workers  int
		hostname string
	)
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the DAGs (user_automation and --dags) on their schedules, with retries, history and Airflow's REST API (Airflow's role)",
		Long: `scheduler is Airflow's scheduler, executor and REST API in one: it creates DAG
runs when they are due (catchup, max_active_runs), runs their tasks through
River with retries and timeouts, keeps runs, tries and logs in the metadata
store, and serves Airflow's stable REST API v1 on --addr.

The built-in DAG user_automation is the original's (owner airscholar, @daily,
catchup off, one task stream_data_from_api), set by the flags below; more DAGs
come from --dags FILE. Several schedulers on one PostgreSQL share the work and
never create a run twice.

The REST API needs a login: user admin, with the password of
USERSTREAM_ADMIN_PASSWORD, or one generated at the first start and printed once.`,
		Example: `  userstream scheduler --metadata postgres://airflow:pw@postgres/airflow --brokers broker:29092
  userstream scheduler --schedule '@every 30s' --users-per-run 5000 --run-duration 0`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := codec.validate(); err != nil {
				return err
			}
			if _, err := df.specs(); err != nil {
				return err
			}
			ctx := cmd.Context()
			src, srcName, err := newSource(a, source, produceFlags{timeout: 10 * time.Second, retries: 3})
			if err != nil {
				return err
			}
			admCl, err := connect(ctx, kc)
			if err != nil {
				return err
			}
			defer admCl.Close()
			enc, encName, err := codec.encoder(ctx, a)
			if err != nil {
				return err
			}
			prod := ingestdag.Producing{Source: src, SourceName: srcName, Encoder: enc, Logger: a.log,
				Producer: func(ctx context.Context) (*kgo.Client, error) {
					return connect(ctx, kc, ingest.ProducerOpts(broker.Topic)...)
				}}
			dags, err := df.buildDAGs(prod)
			if err != nil {
				return err
			}
			a.log.Info("scheduler producing", "brokers", strings.Join(kc.Brokers, ","), "source", srcName, "format", encName)
			err = stack.RunScheduler(ctx, stack.Scheduler{Metadata: metadata, AdminPassword: password, ViewerPassword: viewer,
				Addr: addr, DAGs: dags, Workers: workers, Hostname: hostname, Stdout: a.stdout, Logger: a.log})
			switch {
			case errors.Is(err, stack.ErrSchedulerConfig):
				return usageError{err}
			case errors.Is(err, stack.ErrSchedulerAddr):
				return fmt.Errorf("--addr: %w (pass another address, or an empty one to turn the API off)", err)
			}
			return badMetadataURLErr(err)
		},
	}
	fs := cmd.Flags()
	addKafkaFlags(fs, &kc)
	codec.addFlags(fs, true)
	df.addFlags(fs, "@daily", 0, 60*time.Second)
	fs.StringVar(&metadata, "metadata", defaultMetadata, "metadata store: "+stores.Schemes)
	fs.StringVar(&source, "source", "", "Random User API endpoint (empty: the built-in generator, in process)")
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "serve the REST API (and /metrics) here (empty: off)")
	fs.StringVar(&password, "admin-password", "", "the admin login's password (prefer USERSTREAM_ADMIN_PASSWORD; empty: keep the stored one, or generate one at the first start)")
	fs.StringVar(&viewer, "viewer-password", "", "also create a read-only login \"viewer\" with this password (prefer USERSTREAM_VIEWER_PASSWORD)")
	fs.IntVar(&workers, "workers", scheduler.DefaultWorkers, "task tries this process runs at once")
	fs.StringVar(&hostname, "hostname", "", "name recorded on this process's tries (default: the host name)")
	return cmd
}
