package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/bench"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/stream"
)

func newBenchCmd(a *app) *cobra.Command {
	var (
		users       int
		format      string
		rate        float64
		latencyFor  time.Duration
		latencyReq  int
		batch       int
		writeBatch  int
		out         string
		cpuProfile  string
		cpuStage    string
		concurrency int
		sinkURL     string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the pipeline on this machine: generation, ingest, stream, SQLite, end-to-end latency",
		Long: `bench runs every stage in this process against loopback servers it starts
(the built-in API over HTTP, the embedded broker and registry, SQLite in a
temporary directory) and prints a table, with the ceiling each stage is
measured against: in-process generation for ingest, the SQLite sink's own
upsert rate for the stream, and raw batched SQLite inserts for the sink.
With --sink postgres://..., the stream lands in PostgreSQL and its ceiling
is the best of the PostgreSQL sink's upsert methods alone, each into a
schema of the bench's own (dropped at the end). End-to-end latency (fetch
to stored) is measured at a fixed rate. Nothing leaves 127.0.0.1 but the
PostgreSQL connection; everything stops by itself.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if users < 1000 {
				return usagef("--users: %d is too few to measure; give at least 1000", users)
			}
			if format != "avro" && format != "json" {
				return usagef("--format: %q is not avro or json", format)
			}
			if latencyReq < 0 || latencyReq > ingest.MaxBatch {
				return usagef("--latency-request: %d is outside 0..%d", latencyReq, ingest.MaxBatch)
			}
			if sinkURL != "" && !strings.HasPrefix(sinkURL, "postgres://") && !strings.HasPrefix(sinkURL, "postgresql://") {
				return usagef("--sink: want a postgres://user:pass@host:5432/db URL (empty: SQLite in a temporary directory)")
			}
			if rate <= 0 || latencyFor <= 0 {
				return usagef("--latency-rate and --latency-duration must be positive")
			}
			if batch < 1 || batch > ingest.MaxBatch {
				return usagef("--batch-size: %d is outside 1..%d", batch, ingest.MaxBatch)
			}
			if writeBatch < 1 {
				return usagef("--write-batch: %d must be at least 1", writeBatch)
			}
			if cpuStage != "" && !slices.Contains(bench.Stages, cpuStage) {
				return usagef("--cpuprofile-stage: %q is not one of %s", cpuStage, strings.Join(bench.Stages, ", "))
			}
			if cpuStage != "" && cpuProfile == "" {
				return usagef("--cpuprofile-stage needs --cpuprofile FILE")
			}
			cfg := bench.Config{Users: users, Format: format, LatencyRate: rate,
				LatencyFor: latencyFor, LatencyRequest: latencyReq, BatchSize: batch, WriteBatch: writeBatch, Concurrency: concurrency, SinkURL: sinkURL, Logger: a.log,
				Progress: func(stage string) { fmt.Fprintf(a.stderr, "bench: %s...\n", stage) }}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if cpuStage == "" {
					if err := pprof.StartCPUProfile(f); err != nil {
						return fmt.Errorf("--cpuprofile: %w", err)
					}
					defer pprof.StopCPUProfile()
				} else {
					cfg.Around = func(stage string) func() {
						if stage != cpuStage || pprof.StartCPUProfile(f) != nil {
							return nil
						}
						return pprof.StopCPUProfile
					}
				}
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep.WriteTable(a.stdout)
			if out != "" {
				b, _ := json.MarshalIndent(rep, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&users, "users", 100_000, "users pushed through ingest and stream")
	fs.StringVar(&format, "format", "avro", "message format: avro or json")
	fs.Float64Var(&rate, "latency-rate", 2000, "users/s produced while measuring end-to-end latency")
	fs.StringVar(&sinkURL, "sink", "", "stream into this PostgreSQL database instead of SQLite (postgres://...; the bench's tables go in schemas of its own, dropped at the end)")
	fs.IntVar(&latencyReq, "latency-request", 0, "users a request fetches while latency is measured (0: a fiftieth of --latency-rate, 20 ms of users)")
	fs.DurationVar(&latencyFor, "latency-duration", 10*time.Second, "how long latency is measured")
	fs.IntVar(&batch, "batch-size", 1000, "users per API request")
	fs.IntVar(&writeBatch, "write-batch", stream.DefaultBatchSize, "most users per sink write, for the stream and the sinks alone (as stream --batch-size)")
	fs.IntVar(&concurrency, "concurrency", 2, "API requests in flight during ingest")
	fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.StringVar(&cpuStage, "cpuprofile-stage", "", "profile only this stage: "+strings.Join(bench.Stages, ", "))
	return cmd
}
