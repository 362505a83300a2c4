package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink/sqlite"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/user"
)

// benchResult is one line of `userstream bench`.
type benchResult struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Ceiling string  `json:"ceiling,omitempty"` // what this is measured against
	Ratio   float64 `json:"ratio,omitempty"`   // Value / ceiling, when both are rates
	Note    string  `json:"note,omitempty"`
}

type benchReport struct {
	Started  time.Time     `json:"started"`
	GoOS     string        `json:"goos"`
	GoArch   string        `json:"goarch"`
	CPUs     int           `json:"cpus"`
	Users    int           `json:"users"`
	Format   string        `json:"format"`
	Results  []benchResult `json:"results"`
	PeakRSSB int64         `json:"peak_rss_bytes"`
}

func newBenchCmd(a *app) *cobra.Command {
	var (
		users       int
		format      string
		rate        float64
		latencyFor  time.Duration
		batch       int
		out         string
		cpuProfile  string
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the pipeline on this machine: generation, ingest, stream, SQLite, end-to-end latency",
		Long: `bench runs every stage in this process against loopback servers it starts
(the built-in API over HTTP, the embedded broker and registry, SQLite in a
temporary directory) and prints a table, with the ceiling each stage is
measured against: in-process generation for ingest, the SQLite sink's own
upsert rate for the stream, and raw batched SQLite inserts for the sink. End-to-end latency (fetch to stored) is measured at a
fixed rate. Nothing leaves 127.0.0.1; everything stops by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if users < 1000 {
				return usagef("--users: %d is too few to measure; give at least 1000", users)
			}
			if format != "avro" && format != "json" {
				return usagef("--format: %q is not avro or json", format)
			}
			if rate <= 0 || latencyFor <= 0 {
				return usagef("--latency-rate and --latency-duration must be positive")
			}
			if batch < 1 || batch > ingest.MaxBatch {
				return usagef("--batch-size: %d is outside 1..%d", batch, ingest.MaxBatch)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			rep, err := runBench(cmd.Context(), a, benchConfig{users: users, format: format, rate: rate,
				latencyFor: latencyFor, batch: batch, concurrency: concurrency})
			if err != nil {
				return err
			}
			printBench(a.stdout, rep)
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
	fs.DurationVar(&latencyFor, "latency-duration", 10*time.Second, "how long latency is measured")
	fs.IntVar(&batch, "batch-size", 1000, "users per API request and per sink write")
	fs.IntVar(&concurrency, "concurrency", 2, "API requests in flight during ingest")
	fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

type benchConfig struct {
	users, batch, concurrency int
	format                    string
	rate                      float64
	latencyFor                time.Duration
}

func runBench(ctx context.Context, a *app, c benchConfig) (*benchReport, error) {
	rep := &benchReport{Started: time.Now().UTC(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), Users: c.users, Format: c.format}
	dir, err := os.MkdirTemp("", "userstream-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	step := func(name string) { fmt.Fprintf(a.stderr, "bench: %s...\n", name) }

	// 1. Ceiling of ingest: generating users in process, one goroutine.
	step("in-process generation")
	gen := randomuser.NewGenerator()
	genRate, err := measureGeneration(gen, c.users)
	if err != nil {
		return nil, err
	}
	rep.add(benchResult{Name: "generate (in process, 1 goroutine, JSON)", Value: genRate, Unit: "users/s"})

	// The stack: built-in API over HTTP, embedded broker and registry.
	b, err := broker.StartEmbedded(ctx, "127.0.0.1:0", filepath.Join(dir, "kafka"), broker.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	reg, err := schema.StartRegistry(ctx, "127.0.0.1:0", "", schema.WithRegistryLogger(a.log))
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	api := &http.Server{Handler: randomuser.NewHandler(randomuser.WithGenerator(gen)), ReadHeaderTimeout: 5 * time.Second}
	go api.Serve(ln)
	defer api.Close()
	apiURL := "http://" + ln.Addr().String() + "/api/"
	src, err := randomuser.NewClient(apiURL, randomuser.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	codec := codecFlags{registry: reg.URL(), format: c.format}
	enc, _, err := codec.encoder(ctx, a)
	if err != nil {
		return nil, err
	}
	dec, err := codec.decoder(ctx, a)
	if err != nil {
		return nil, err
	}
	kc := broker.Config{Brokers: []string{b.Addr()}}
	prod, err := broker.NewClient(ctx, kc, ingest.ProducerOpts(broker.Topic)...)
	if err != nil {
		return nil, err
	}
	defer prod.Close()

	// 2. Ingest: HTTP source -> embedded broker.
	step(fmt.Sprintf("ingest of %d users over HTTP into the embedded broker", c.users))
	s, err := ingest.Run(ctx, src, prod, enc, ingest.Config{Users: c.users, BatchSize: c.batch,
		Concurrency: c.concurrency, SourceName: apiURL})
	if err != nil {
		return nil, fmt.Errorf("bench ingest: %w", err)
	}
	rep.add(benchResult{Name: "ingest (HTTP API -> broker, " + c.format + ")", Value: s.UsersPerSecond(), Unit: "users/s",
		Ceiling: "generate", Ratio: s.UsersPerSecond() / genRate})

	// 3. Stream: the filled topic -> SQLite.
	step("stream of the topic into SQLite")
	snk, err := sqlite.Open(ctx, "sqlite:"+filepath.Join(dir, "users.db"))
	if err != nil {
		return nil, err
	}
	defer snk.Close()
	var lat latencies
	scfg := stream.Config{Group: "userstream-bench", BatchSize: c.batch, Logger: a.log,
		AfterStore: func(_ context.Context, batch []user.Record) error { lat.observe(batch); return nil }}
	cons, err := broker.NewClient(ctx, kc, stream.ConsumerOpts(scfg)...)
	if err != nil {
		return nil, err
	}
	sctx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	start := time.Now()
	go func() { streamDone <- stream.Run(sctx, cons, dec, snk, scfg) }()
	defer func() { stopStream(); <-streamDone; cons.Close() }()
	if err := waitStored(ctx, snk, int64(c.users), streamDone); err != nil {
		return nil, err
	}
	streamRate := float64(c.users) / time.Since(start).Seconds()

	// 4. Ceiling of the stream: raw batched inserts into SQLite.
	step("raw batched SQLite inserts")
	recs, err := snk.Recent(ctx, min(c.users, 50_000))
	if err != nil {
		return nil, err
	}
	ceiling, err := sqlite.InsertCeiling(ctx, dir, recs, c.batch)
	if err != nil {
		return nil, err
	}
	// The sink alone: the same records upserted into a fresh database,
	// batch by batch, as the stream writes them.
	step("SQLite sink upserts alone")
	upsertRate, err := measureUpserts(ctx, filepath.Join(dir, "upserts.db"), recs, c.batch)
	if err != nil {
		return nil, err
	}
	rep.add(benchResult{Name: "stream (broker -> SQLite upsert, " + c.format + ")", Value: streamRate, Unit: "rows/s",
		Ceiling: "sqlite sink upsert", Ratio: streamRate / upsertRate})
	rep.add(benchResult{Name: "sqlite sink upsert alone (new ids, batched)", Value: upsertRate, Unit: "rows/s",
		Ceiling: "sqlite raw insert", Ratio: upsertRate / ceiling})
	rep.add(benchResult{Name: "sqlite raw insert (no key, batched)", Value: ceiling, Unit: "rows/s"})

	// 5. End-to-end latency at a fixed rate, stream running.
	step(fmt.Sprintf("end-to-end latency at %.0f users/s for %s", c.rate, c.latencyFor))
	lat.reset()
	ls, err := ingest.Run(ctx, src, prod, enc, ingest.Config{Duration: c.latencyFor, Rate: c.rate,
		BatchSize: max(1, min(c.batch, int(c.rate/10))), Concurrency: 1, SourceName: apiURL})
	if err != nil {
		return nil, fmt.Errorf("bench latency ingest: %w", err)
	}
	if err := waitStored(ctx, snk, int64(c.users)+ls.Produced, streamDone); err != nil {
		return nil, err
	}
	p50, p99, n := lat.quantiles()
	note := fmt.Sprintf("%d users, fetch to stored", n)
	rep.add(benchResult{Name: "end-to-end latency p50", Value: p50.Seconds() * 1000, Unit: "ms", Note: note})
	rep.add(benchResult{Name: "end-to-end latency p99", Value: p99.Seconds() * 1000, Unit: "ms", Note: note})
	rep.PeakRSSB = peakRSS()
	rep.add(benchResult{Name: "peak RSS (whole process)", Value: float64(rep.PeakRSSB) / (1 << 20), Unit: "MiB"})
	return rep, nil
}

func (r *benchReport) add(res benchResult) { r.Results = append(r.Results, res) }

// measureGeneration encodes n users in batches of 5000 and returns users/s.
func measureGeneration(gen *randomuser.Generator, n int) (float64, error) {
	total := n
	start := time.Now()
	for page := 1; n > 0; page++ {
		k := min(n, ingest.MaxBatch)
		if err := gen.WriteResponse(io.Discard, randomuser.Params{Results: k, Seed: "bench", Page: page}); err != nil {
			return 0, err
		}
		n -= k
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// measureUpserts writes recs into a new SQLite sink in batches and returns
// rows/s.
func measureUpserts(ctx context.Context, path string, recs []user.Record, batch int) (float64, error) {
	snk, err := sqlite.Open(ctx, "sqlite:"+path)
	if err != nil {
		return 0, err
	}
	defer snk.Close()
	start := time.Now()
	for chunk := range slices.Chunk(recs, batch) {
		if err := snk.Upsert(ctx, chunk); err != nil {
			return 0, err
		}
	}
	return float64(len(recs)) / time.Since(start).Seconds(), nil
}

// waitStored waits until the sink holds want users or the stream fails.
func waitStored(ctx context.Context, snk *sqlite.Sink, want int64, streamDone <-chan error) error {
	for {
		n, err := snk.Count(ctx)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		select {
		case err := <-streamDone:
			return fmt.Errorf("bench: stream stopped with %d of %d users stored: %v", n, want, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// latencies collects fetch-to-stored times of stored records.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) observe(batch []user.Record) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range batch {
		if !r.IngestedAt.IsZero() {
			l.d = append(l.d, now.Sub(r.IngestedAt))
		}
	}
}

func (l *latencies) reset() { l.mu.Lock(); l.d = l.d[:0]; l.mu.Unlock() }

func (l *latencies) quantiles() (p50, p99 time.Duration, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)], len(s)
}

// peakRSS reads the process's high-water resident set size (Linux).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func printBench(w io.Writer, rep *benchReport) {
	fmt.Fprintf(w, "userstream bench: %d users, %s, %s/%s, %d CPUs\n", rep.Users, rep.Format, rep.GoOS, rep.GoArch, rep.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tvalue\tunit\tvs ceiling\t")
	for _, r := range rep.Results {
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.0f%% of %s", r.Ratio*100, r.Ceiling)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t\n", r.Name, r.Value, r.Unit, ratio)
	}
	tw.Flush()
}
