package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/redact"
)

// produceFlags are the flags of one ingest run, shared by `produce` and the
// repeated runs of `dev`.
type produceFlags struct {
	source      string
	users       int
	duration    time.Duration
	batchSize   int
	concurrency int
	rate        float64
	seed        string
	nat         []string
	partitions  int32
	timeout     time.Duration
	retries     int
}

func (p *produceFlags) addFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&p.source, "source", "", "Random User API endpoint, e.g. https://randomuser.me/api/ or http://127.0.0.1:8088/api/ (empty: the built-in generator, in process)")
	fs.IntVar(&p.users, "users", 0, "produce this many users, then stop")
	fs.DurationVar(&p.duration, "duration", 0, "produce for this long, then stop (the original ran 60s)")
	fs.IntVar(&p.batchSize, "batch-size", 1000, "users per API request (1..5000)")
	fs.IntVar(&p.concurrency, "concurrency", 2, "API requests in flight")
	fs.Float64Var(&p.rate, "rate", 0, "most users per second (0: as fast as the source allows)")
	fs.StringVar(&p.seed, "seed", "", "fixed seed: requests use it with pages 1, 2, ... so a run can be repeated (empty: a fresh seed per run)")
	fs.StringSliceVar(&p.nat, "nat", nil, "nationalities to ask for, e.g. fr,gb (empty: all)")
	fs.Int32Var(&p.partitions, "partitions", broker.DefaultPartitions, "partitions of users_created when it has to be created")
	fs.DurationVar(&p.timeout, "request-timeout", randomuser.DefaultTimeout, "bound on one API request: connect, send, read the whole body")
	fs.IntVar(&p.retries, "request-retries", randomuser.DefaultRetries, "retries of a failed API request (5xx, 429, malformed body, timeout), with backoff")
}

func (p *produceFlags) validate() error {
	if p.users < 0 {
		return usagef("--users: %d is negative", p.users)
	}
	if p.duration < 0 {
		return usagef("--duration: %s is negative", p.duration)
	}
	if p.users == 0 && p.duration == 0 {
		return usagef("give --users N or --duration D (or both) to bound the run")
	}
	if p.batchSize < 1 || p.batchSize > ingest.MaxBatch {
		return usagef("--batch-size: %d is outside 1..%d", p.batchSize, ingest.MaxBatch)
	}
	if p.concurrency < 1 {
		return usagef("--concurrency: %d must be at least 1", p.concurrency)
	}
	if p.rate < 0 {
		return usagef("--rate: %g is negative", p.rate)
	}
	if p.timeout <= 0 {
		return usagef("--request-timeout: %s must be positive", p.timeout)
	}
	if p.retries < 0 {
		return usagef("--request-retries: %d is negative", p.retries)
	}
	if p.source != "" {
		u, err := url.Parse(p.source)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--source: %q is not an http(s) URL", redact.URL(p.source))
		}
	}
	return nil
}

// newSource returns the Random User source for a URL; empty means the
// built-in generator, called in process.
func newSource(a *app, raw string, pf produceFlags) (ingest.Source, string, error) {
	if raw == "" {
		return randomuser.NewGenerator(), "builtin", nil
	}
	opts := []randomuser.ClientOption{randomuser.WithLogger(a.log)}
	if pf.timeout > 0 {
		opts = append(opts, randomuser.WithTimeout(pf.timeout))
	}
	if pf.retries != randomuser.DefaultRetries {
		opts = append(opts, randomuser.WithRetries(pf.retries, randomuser.DefaultBaseBackoff, randomuser.DefaultMaxBackoff))
	}
	c, err := randomuser.NewClient(raw, opts...)
	if err != nil {
		return nil, "", usagef("--source: %v", err)
	}
	return c, c.URL(randomuser.Params{}), nil
}

func newProduceCmd(a *app) *cobra.Command {
	var (
		kc    = broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}}
		codec codecFlags
		pf    produceFlags
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Fetch users from a Random User API and produce them to users_created (the DAG task)",
		Example: `  userstream produce --users 20000 --source http://127.0.0.1:8088/api/
  userstream produce --duration 60s --source https://randomuser.me/api/ --format json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.validate(); err != nil {
				return err
			}
			if err := codec.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			src, srcName, err := newSource(a, pf.source, pf)
			if err != nil {
				return err
			}
			cl, err := connect(ctx, kc, ingest.ProducerOpts(broker.Topic)...)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := ensureTopics(ctx, a, kadm.NewClient(cl), pf.partitions); err != nil {
				return err
			}
			enc, format, err := codec.encoder(ctx, a)
			if err != nil {
				return err
			}
			a.log.Info("producing", "brokers", strings.Join(kc.Brokers, ","), "source", srcName, "format", format)
			s, err := runIngest(ctx, a, cl, src, srcName, enc, pf, false)
			fmt.Fprintln(a.stdout, s)
			return err
		},
	}
	addKafkaFlags(cmd.Flags(), &kc)
	codec.addFlags(cmd.Flags(), true)
	pf.addFlags(cmd)
	return cmd
}

// runIngest runs one ingest with progress on a terminal (unless quiet):
// totals, rate, and for a count-bound run the share done and the time left.
func runIngest(ctx context.Context, a *app, cl *kgo.Client, src ingest.Source, srcName string, enc ingest.Encoder, pf produceFlags, quiet bool) (ingest.Summary, error) {
	prog := newProgress(a.stderr, "produce")
	if quiet {
		prog.tty = false
	}
	defer prog.done()
	return ingest.Run(ctx, src, cl, enc, ingest.Config{
		Topic: broker.Topic, Users: pf.users, Duration: pf.duration, BatchSize: pf.batchSize,
		Concurrency: pf.concurrency, Rate: pf.rate, Seed: pf.seed, Nat: pf.nat,
		RunID: uuid.NewString(), SourceName: srcName,
		Progress: func(s ingest.Summary) { prog.update(progressLine(s, pf)) },
	})
}

// progressLine is one progress line of a run.
func progressLine(s ingest.Summary, pf produceFlags) string {
	rate := s.UsersPerSecond()
	line := fmt.Sprintf("produced %d", s.Produced)
	switch {
	case pf.users > 0:
		line += fmt.Sprintf("/%d (%.0f%%)", pf.users, 100*float64(s.Produced)/float64(pf.users))
		if rate > 0 {
			left := time.Duration(float64(int64(pf.users)-s.Produced) / rate * float64(time.Second))
			line += fmt.Sprintf(", %s left", left.Round(time.Second))
		}
	case pf.duration > 0:
		line += fmt.Sprintf(", %s of %s", s.Elapsed.Round(time.Second), pf.duration)
	}
	return line + fmt.Sprintf(", %.0f users/s, fetched %d, failed %d", rate, s.Fetched, s.Failed)
}
