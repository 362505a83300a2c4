package bench

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"
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
			var stages []string
			rep, err := Run(context.Background(), Config{Users: 3000, BatchSize: 500, Format: format,
				LatencyRate: 1000, LatencyFor: 500 * time.Millisecond,
				Progress: func(s string) { stages = append(stages, s) }})
			if err != nil {
				t.Fatal(err)
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
				"end-to-end latency p50", "end-to-end latency p99", "peak RSS (whole process)"}
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
