// Package bench measures the pipeline on this machine, stage by stage, each
// beside the ceiling it is bounded by, and the end-to-end latency.
//
// The ceilings: the generator for ingest, the sink alone for the stream
// (SQLite, or PostgreSQL with each upsert method), raw batched inserts for
// the SQLite sink. Everything runs in this process
// against servers it starts on 127.0.0.1, and stops by itself.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/sink/sqlite"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/user"
)

// Result is one measured line.
type Result struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Ceiling string  `json:"ceiling,omitempty"` // what this is measured against
	Ratio   float64 `json:"ratio,omitempty"`   // Value / ceiling, when both are rates
	Note    string  `json:"note,omitempty"`
}

// Report is what one Run measured, and where.
type Report struct {
	Started  time.Time `json:"started"`
	GoOS     string    `json:"goos"`
	GoArch   string    `json:"goarch"`
	CPUs     int       `json:"cpus"`
	Users    int       `json:"users"`
	Format   string    `json:"format"`
	Results  []Result  `json:"results"`
	PeakRSSB int64     `json:"peak_rss_bytes"` // through ingest and stream, before the ceilings
}

// Config says what to measure. Zero fields take the defaults in brackets.
type Config struct {
	Users     int // users through ingest and stream [100000]
	BatchSize int // users per API request [1000]
	// WriteBatch is the most users per sink write, for the stream and for
	// the sinks measured alone [stream.DefaultBatchSize].
	WriteBatch  int
	Concurrency int           // API requests in flight during ingest [2]
	Format      string        // "avro" or "json" ["avro"]
	LatencyRate float64       // users/s while latency is measured [2000]
	LatencyFor  time.Duration // how long latency is measured [10s]
	// LatencyRequest is the users a request fetches while latency is
	// measured [LatencyRate/50: 50 requests a second, each 20 ms of users].
	// Every user of a request waits for the whole request to be encoded,
	// produced and stored, so this is the latency's floor.
	LatencyRequest int
	// SinkURL is where the stream lands users: empty for SQLite in the
	// bench's temporary directory, or a postgres:// URL, whose database
	// gets one schema of the bench's own for the stream and one for each
	// upsert method measured alone, dropped at the end.
	SinkURL string
	Logger  *slog.Logger // [discard]
	// Progress, when set, is told the name of each stage as it starts.
	Progress func(stage string)
	// Around, when set, is called as each timed stage starts, with its
	// name (one of Stages), and the function it returns as the stage ends:
	// to profile one stage alone (userstream bench --cpuprofile-stage).
	Around func(stage string) (end func())
}

// Stages are the names Around is called with, in order: in-process
// generation, ingest of the users into the broker, the stream of them into
// the sink, and the latency run (ingest at a fixed rate, stream running).
var Stages = []string{"generate", "ingest", "stream", "latency"}

// around starts stage for c.Around and returns its end.
func (c *Config) around(stage string) func() {
	if c.Around == nil {
		return func() {}
	}
	if end := c.Around(stage); end != nil {
		return end
	}
	return func() {}
}

func (c *Config) defaults() {
	if c.Users <= 0 {
		c.Users = 100_000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = stream.DefaultBatchSize
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.Format == "" {
		c.Format = "avro"
	}
	if c.LatencyRate <= 0 {
		c.LatencyRate = 2000
	}
	if c.LatencyRequest <= 0 {
		c.LatencyRequest = max(1, int(c.LatencyRate/50))
	}
	if c.LatencyFor <= 0 {
		c.LatencyFor = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run measures every stage and returns the report. It fails on the first
// stage that fails; an unknown Format is an error.
func Run(ctx context.Context, c Config) (*Report, error) {
	c.defaults()
	if c.Format != "avro" && c.Format != "json" {
		return nil, fmt.Errorf("bench: format %q is not avro or json", c.Format)
	}
	log := c.Logger
	rep := &Report{Started: time.Now().UTC(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), Users: c.Users, Format: c.Format}
	dir, err := os.MkdirTemp("", "userstream-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	step := func(name string) {
		if c.Progress != nil {
			c.Progress(name)
		}
	}

	// 1. Ceiling of ingest: generating users in process, one goroutine.
	step("in-process generation")
	gen := randomuser.NewGenerator()
	end := c.around("generate")
	genRate, err := measureGeneration(gen, c.Users)
	end()
	if err != nil {
		return nil, err
	}
	rep.add(Result{Name: "generate (in process, 1 goroutine, JSON)", Value: genRate, Unit: "users/s"})

	// The stack: built-in API over HTTP, embedded broker and registry, the
	// SQLite sink, on free loopback ports.
	pg := strings.HasPrefix(c.SinkURL, "postgres://") || strings.HasPrefix(c.SinkURL, "postgresql://")
	if c.SinkURL != "" && !pg {
		return nil, errors.New("bench: the sink URL must be a postgres:// URL (or empty for SQLite)")
	}
	var schemas pgSchemas
	streamURL := ""
	if pg {
		if streamURL, err = schemas.url(c.SinkURL, "stream"); err != nil {
			return nil, err
		}
		defer schemas.drop(context.WithoutCancel(ctx), c.SinkURL, log)
	}
	st, err := stack.Start(ctx, stack.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0",
		APIAddr: "127.0.0.1:0", Format: c.Format, Generator: gen, SinkURL: streamURL, Logger: log})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	apiURL := st.APIURL
	src, err := st.Source()
	if err != nil {
		return nil, err
	}
	enc := st.Encoder
	prod, err := st.Producer(ctx)
	if err != nil {
		return nil, err
	}
	defer prod.Close()

	// 2. Ingest: HTTP source -> embedded broker.
	step(fmt.Sprintf("ingest of %d users over HTTP into the embedded broker", c.Users))
	end = c.around("ingest")
	s, err := ingest.Run(ctx, src, prod, enc, ingest.Config{Users: c.Users, BatchSize: c.BatchSize,
		Concurrency: c.Concurrency, SourceName: apiURL})
	end()
	if err != nil {
		return nil, fmt.Errorf("bench ingest: %w", err)
	}
	rep.add(Result{Name: "ingest (HTTP API -> broker, " + c.Format + ")", Value: s.UsersPerSecond(), Unit: "users/s",
		Ceiling: "generate", Ratio: s.UsersPerSecond() / genRate})

	// 3. Stream: the filled topic -> SQLite.
	step("stream of the topic into SQLite")
	snk := st.Sink
	var lat latencies
	scfg := stream.Config{Group: "userstream-bench", BatchSize: c.WriteBatch, Logger: log,
		AfterStore: func(_ context.Context, batch []user.Record) error { lat.observe(batch); return nil }}
	sctx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	end = c.around("stream")
	start := time.Now()
	go func() { streamDone <- st.RunStream(sctx, scfg) }()
	defer func() { stopStream(); <-streamDone }()
	err = waitStored(ctx, snk, int64(c.Users), streamDone)
	streamRate := float64(c.Users) / time.Since(start).Seconds()
	end()
	if err != nil {
		return nil, err
	}

	// The pipeline's own peak, before the ceilings load every record.
	rep.PeakRSSB = peakRSS()

	// 4. Ceilings of the stream, over every record it stored (a table half
	// the size would flatter them: an insert into a B-tree costs more as it
	// grows).
	recs, err := snk.Recent(ctx, c.Users)
	if err != nil {
		return nil, err
	}
	if pg {
		if err := pgCeilings(ctx, rep, &schemas, c, recs, streamRate, step); err != nil {
			return nil, err
		}
	} else if err := sqliteCeilings(ctx, rep, dir, c, recs, streamRate, step); err != nil {
		return nil, err
	}

	// 5. End-to-end latency at a fixed rate, stream running.
	step(fmt.Sprintf("end-to-end latency at %.0f users/s for %s", c.LatencyRate, c.LatencyFor))
	lat.reset()
	end = c.around("latency")
	ls, err := ingest.Run(ctx, src, prod, enc, ingest.Config{Duration: c.LatencyFor, Rate: c.LatencyRate,
		BatchSize: min(c.BatchSize, c.LatencyRequest), Concurrency: 1, SourceName: apiURL})
	if err == nil {
		err = waitStored(ctx, snk, int64(c.Users)+ls.Produced, streamDone)
	} else {
		err = fmt.Errorf("bench latency ingest: %w", err)
	}
	end()
	if err != nil {
		return nil, err
	}
	p50, p99, n := lat.quantiles()
	note := fmt.Sprintf("%d users, fetch to stored, %d a request", n, min(c.BatchSize, c.LatencyRequest))
	rep.add(Result{Name: "end-to-end latency p50", Value: p50.Seconds() * 1000, Unit: "ms", Note: note})
	rep.add(Result{Name: "end-to-end latency p99", Value: p99.Seconds() * 1000, Unit: "ms", Note: note})
	rep.add(Result{Name: "peak RSS (generate, ingest, stream)", Value: float64(rep.PeakRSSB) / (1 << 20), Unit: "MiB",
		Note: "the process's high-water mark before the ceilings load every record"})
	return rep, nil
}

func (r *Report) add(res Result) { r.Results = append(r.Results, res) }

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

// sqliteCeilings measures the SQLite sink alone and raw inserts with recs
// and reports them beside the stream's rate.
func sqliteCeilings(ctx context.Context, rep *Report, dir string, c Config, recs []user.Record, streamRate float64, step func(string)) error {
	step("raw batched SQLite inserts")
	ceiling, err := sqlite.InsertCeiling(ctx, dir, recs, c.WriteBatch)
	if err != nil {
		return err
	}
	// The sink alone: the same records upserted into a fresh database,
	// batch by batch, as the stream writes them.
	step("SQLite sink upserts alone")
	upsertRate, err := measureUpserts(ctx, "sqlite:"+filepath.Join(dir, "upserts.db"), recs, c.WriteBatch)
	if err != nil {
		return err
	}
	rep.add(Result{Name: "stream (broker -> SQLite upsert, " + c.Format + ")", Value: streamRate, Unit: "rows/s",
		Ceiling: "sqlite sink upsert", Ratio: streamRate / upsertRate})
	rep.add(Result{Name: "sqlite sink upsert alone (new ids, batched)", Value: upsertRate, Unit: "rows/s",
		Ceiling: "sqlite raw insert", Ratio: upsertRate / ceiling})
	rep.add(Result{Name: "sqlite raw insert (no key, batched)", Value: ceiling, Unit: "rows/s"})
	return nil
}

// pgCeilings measures the PostgreSQL sink alone with recs, once for each
// upsert method, each into a fresh schema, and reports the stream's rate
// beside the best of them.
func pgCeilings(ctx context.Context, rep *Report, schemas *pgSchemas, c Config, recs []user.Record, streamRate float64, step func(string)) error {
	var best float64
	var bestName string
	var alone []Result
	for _, m := range postgres.Methods {
		step(fmt.Sprintf("PostgreSQL sink upserts alone (%s)", m))
		u, err := schemas.url(c.SinkURL, string(m))
		if err != nil {
			return err
		}
		r, err := measureUpserts(ctx, u+"&upsert="+string(m), recs, c.WriteBatch)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("postgres sink upsert alone, %s (new ids, batched)", m)
		if m == postgres.DefaultMethod {
			name = fmt.Sprintf("postgres sink upsert alone, %s (default)", m)
		}
		alone = append(alone, Result{Name: name, Value: r, Unit: "rows/s"})
		if r > best {
			best, bestName = r, string(m)
		}
	}
	rep.add(Result{Name: "stream (broker -> PostgreSQL upsert, " + c.Format + ")", Value: streamRate, Unit: "rows/s",
		Ceiling: "best postgres upsert (" + bestName + ")", Ratio: streamRate / best})
	for _, r := range alone {
		rep.add(r)
	}
	return nil
}

// measureUpserts writes recs into a new sink at url in batches and returns
// rows/s.
func measureUpserts(ctx context.Context, url string, recs []user.Record, batch int) (float64, error) {
	snk, err := sinks.Open(ctx, url)
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
func waitStored(ctx context.Context, snk sink.Sink, want int64, streamDone <-chan error) error {
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

// WriteTable prints the report as an aligned table.
func (rep *Report) WriteTable(w io.Writer) {
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
