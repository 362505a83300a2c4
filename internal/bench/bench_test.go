package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/sink/postgres"
)

// TestRunMeasuresEveryStage runs a small bench end to end and checks the
// report is whole and consistent: every stage measured, rates beside their
// ceilings, p50 <= p99, and the table shows every line.
func TestRunMeasuresEveryStage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline; -short skips it")
	}
	for _, format := range []string{"avro", "json"} {
		t.Run(format, func(t *testing.T) {
			var stages, around []string
			rep, err := Run(context.Background(), Config{Users: 3000, BatchSize: 500, Format: format,
				LatencyRate: 1000, LatencyFor: 500 * time.Millisecond,
				Progress: func(s string) { stages = append(stages, s) },
				Around: func(s string) func() {
					around = append(around, "start "+s)
					return func() { around = append(around, "end "+s) }
				}})
			if err != nil {
				t.Fatal(err)
			}
			var wantAround []string
			for _, s := range Stages {
				wantAround = append(wantAround, "start "+s, "end "+s)
			}
			if !slices.Equal(around, wantAround) {
				t.Errorf("Around saw %v, want %v", around, wantAround)
			}
			byName := map[string]Result{}
			for _, r := range rep.Results {
				if r.Value <= 0 || math.IsInf(r.Value, 0) || math.IsNaN(r.Value) {
					t.Errorf("%s = %v %s, want a positive finite figure", r.Name, r.Value, r.Unit)
				}
				byName[r.Name] = r
			}
			want := []string{"generate (in process, 1 goroutine, JSON)",
				"ingest (HTTP API -> broker, " + format + ")", "stream (broker -> SQLite upsert, " + format + ")",
				"sqlite sink upsert alone (new ids, batched)", "sqlite raw insert (no key, batched)",
				"end-to-end latency p50", "end-to-end latency p99", "peak RSS (generate, ingest, stream)"}
			for _, n := range want {
				if _, ok := byName[n]; !ok {
					t.Errorf("report lacks %q", n)
				}
			}
			ing, gen := byName[want[1]], byName[want[0]]
			if math.Abs(ing.Ratio-ing.Value/gen.Value) > 1e-9 {
				t.Errorf("ingest ratio %v, want %v", ing.Ratio, ing.Value/gen.Value)
			}
			if p50, p99 := byName["end-to-end latency p50"].Value, byName["end-to-end latency p99"].Value; p50 > p99 {
				t.Errorf("p50 %vms > p99 %vms", p50, p99)
			}
			if len(stages) < 5 {
				t.Errorf("progress told %d stages: %v", len(stages), stages)
			}
			var buf bytes.Buffer
			rep.WriteTable(&buf)
			for _, n := range want {
				if !strings.Contains(buf.String(), n) {
					t.Errorf("table lacks %q:\n%s", n, buf.String())
				}
			}
		})
	}
	if _, err := Run(context.Background(), Config{Format: "xml"}); err == nil {
		t.Error("an unknown format must be an error")
	}
}

// TestRunIntoPostgres runs a small bench with the stream into PostgreSQL:
// the stream is reported against the best of the three upsert methods
// alone, and the bench's schemas are gone afterwards. It needs
// USERSTREAM_TEST_POSTGRES (scripts/test.sh starts a throwaway server).
func TestRunIntoPostgres(t *testing.T) {
	pgURL := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if pgURL == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: no PostgreSQL server to bench against")
	}
	if testing.Short() {
		t.Skip("runs the whole pipeline; -short skips it")
	}
	ctx := context.Background()
	rep, err := Run(ctx, Config{Users: 3000, BatchSize: 500, LatencyRate: 1000, LatencyFor: 500 * time.Millisecond, SinkURL: pgURL})
	if err != nil {
		t.Fatal(err)
	}
	var streamRes Result
	best := 0.0
	alone := 0
	for _, r := range rep.Results {
		switch {
		case strings.HasPrefix(r.Name, "stream (broker -> PostgreSQL upsert"):
			streamRes = r
		case strings.HasPrefix(r.Name, "postgres sink upsert alone, "):
			alone++
			best = max(best, r.Value)
		case strings.HasPrefix(r.Name, "sqlite"):
			t.Errorf("a PostgreSQL bench reports %q", r.Name)
		}
	}
	if alone != len(postgres.Methods) || streamRes.Value <= 0 {
		t.Fatalf("want the stream and %d methods alone, got %+v", len(postgres.Methods), rep.Results)
	}
	if math.Abs(streamRes.Ratio-streamRes.Value/best) > 1e-9 {
		t.Errorf("stream ratio %v, want %v (against the best method)", streamRes.Ratio, streamRes.Value/best)
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'userstream_bench_%'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d bench schemas left behind", left)
	}
	if _, err := Run(ctx, Config{SinkURL: "mysql://x"}); err == nil {
		t.Error("a sink URL that is not postgres:// must be an error")
	}
}
