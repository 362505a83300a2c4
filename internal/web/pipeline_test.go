package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/web"
)

// worker serves a stream worker's real /metrics with the given latencies
// (seconds) observed.
func worker(t *testing.T, latencies ...float64) string {
	reg := prometheus.NewRegistry()
	m := stream.NewMetrics(reg)
	for _, l := range latencies {
		m.Latency.Observe(l)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// TestPipelineLatencyFromWorkers: the overview of a separate web process
// adds up the latency histograms of the workers it is told about, and names
// one it cannot read without the URL's password.
func TestPipelineLatencyFromWorkers(t *testing.T) {
	fast := make([]float64, 90)
	for i := range fast {
		fast[i] = 0.003 // the 5 ms bucket
	}
	a := worker(t, fast...)
	b := worker(t, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7) // the 1 s bucket
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	secretURL := strings.Replace(down.URL, "http://", "http://scraper:hunter2@", 1) + "/metrics"

	p := &web.Pipeline{Metrics: []string{a, b, secretURL}}
	s := p.Snapshot(context.Background())
	if s.LatencyP50 <= 0 || s.LatencyP50 > 5 {
		t.Errorf("p50 = %v ms, want within the 5 ms bucket (90 of 100 there)", s.LatencyP50)
	}
	if s.LatencyP99 <= 500 || s.LatencyP99 > 1000 {
		t.Errorf("p99 = %v ms, want within the 0.5-1 s bucket (the other worker's)", s.LatencyP99)
	}
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "unreachable") {
		t.Fatalf("problems %q, want one for the closed worker", s.Problems)
	}
	if strings.Contains(s.Problems[0], "hunter2") {
		t.Errorf("the problem shows the URL's password: %q", s.Problems[0])
	}

	if s := (&web.Pipeline{Metrics: []string{worker(t)}}).Snapshot(context.Background()); s.LatencyP50 != -1 || s.LatencyP99 != -1 {
		t.Errorf("no observation: p50 %v p99 %v, want -1 (unknown)", s.LatencyP50, s.LatencyP99)
	}
}
