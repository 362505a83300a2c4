package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/randomuser"
)

// newAPICmd builds `userstream api`: the Random User API 1.4 served from
// the offline generator, with fault injection for tests, and `api sample`
// to print a few users.
func newAPICmd(a *app) *cobra.Command {
	var (
		addr        string
		failRate    float64
		garbageRate float64
		latency     time.Duration
		faultSeed   uint64
	)
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the Random User API 1.4 offline (/api/ and /api/1.4/), from the built-in generator",
		Long: `Serve the Random User API 1.4 from the built-in generator: the same JSON as
randomuser.me, reproducible by seed and page, at any rate, without internet.

  userstream api --addr 127.0.0.1:8088
  curl '127.0.0.1:8088/api/?results=5000&seed=abc'

--fail-rate, --garbage-rate and --latency inject faults on a share of
requests, to test clients against a misbehaving API.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !(failRate >= 0 && failRate <= 1) {
				return usagef("--fail-rate %v: want a share between 0 and 1, e.g. 0.1", failRate)
			}
			if !(garbageRate >= 0 && garbageRate <= 1) {
				return usagef("--garbage-rate %v: want a share between 0 and 1, e.g. 0.05", garbageRate)
			}
			if latency < 0 {
				return usagef("--latency %v: want zero or more, e.g. 50ms", latency)
			}
			h := randomuser.NewHandler(
				randomuser.WithFailRate(failRate),
				randomuser.WithGarbageRate(garbageRate),
				randomuser.WithLatency(latency),
				randomuser.WithFaultSeed(faultSeed),
				randomuser.WithHandlerLogger(a.log),
			)
			return serveAPI(cmd.Context(), a, addr, h)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", randomuser.DefaultAddr, "address to listen on (host:port)")
	f.Float64Var(&failRate, "fail-rate", 0, "share of requests (0..1) answered with HTTP 500/503 and a JSON error")
	f.Float64Var(&garbageRate, "garbage-rate", 0, "share of requests (0..1) answered with a malformed body (truncated JSON or HTML)")
	f.DurationVar(&latency, "latency", 0, "delay added to every response, e.g. 50ms")
	f.Uint64Var(&faultSeed, "fault-seed", 0, "seed of the fault sequence, to replay it (0: random)")
	cmd.AddCommand(newAPISampleCmd(a))
	return cmd
}

// serveAPI listens on addr and serves h until ctx ends, then shuts down,
// giving requests in flight a few seconds.
func serveAPI(ctx context.Context, a *app, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w (is another process using that port? choose another with --addr)", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.log.Info("serving Random User API 1.4", "url", "http://"+ln.Addr().String()+"/api/")
	select {
	case err := <-done:
		return fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shut down: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
	}
	a.log.Info("api stopped")
	return nil
}

// newAPISampleCmd builds `userstream api sample`: a few generated users
// printed to stdout, pretty JSON by default.
func newAPISampleCmd(a *app) *cobra.Command {
	var (
		p   randomuser.Params
		nat string
		inc string
		exc string
	)
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Print a few generated users (pretty JSON by default)",
		Example: `  userstream api sample --results 3 --seed x
  userstream api sample --nat fr,de --format csv`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p.Nat = apiSplitList(nat)
			p.Inc = apiSplitList(inc)
			p.Exc = apiSplitList(exc)
			err := randomuser.NewGenerator().WriteResponse(a.stdout, p)
			if errors.Is(err, randomuser.ErrInvalidParam) {
				return usagef("api sample: %v", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.Results, "results", 3, "number of users, 1..5000 (anything else gives 1, as the API does)")
	f.StringVar(&p.Seed, "seed", "", "seed: the same seed and page give the same users (empty: random)")
	f.IntVar(&p.Page, "page", 1, "page of the seeded sequence")
	f.StringVar(&p.Gender, "gender", "", "male or female (empty: both)")
	f.StringVar(&nat, "nat", "", "nationalities, comma separated: "+strings.Join(randomuser.Nationalities(), ","))
	f.StringVar(&inc, "inc", "", "only these fields, comma separated: "+strings.Join(randomuser.Fields(), ","))
	f.StringVar(&exc, "exc", "", "leave these fields out, comma separated")
	f.StringVar(&p.Password, "password", "", "password spec, e.g. upper,lower,number,8-16 (empty: common words)")
	f.StringVar(&p.Format, "format", "pretty", "json, pretty, csv, yaml or xml")
	f.BoolVar(&p.NoInfo, "noinfo", false, "leave out the info block")
	return cmd
}

func apiSplitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
