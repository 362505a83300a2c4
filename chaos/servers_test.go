package chaos_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestPostgresStopped: the PostgreSQL server (a throwaway cluster the test
// runs itself) is stopped for 15 s mid-stream. The stream retries its
// writes (backing off to 2 s at most), stops polling while it waits, so its
// memory stays bounded, resumes within 5 s of the server's return and
// stores every user once.
func TestPostgresStopped(t *testing.T) {
	skipShort(t)
	pg := startPostgres(t)
	s := proctest.StartStack(t)
	sinkURL := pg.URL()
	metrics := proctest.FreeAddr(t)
	w := proctest.Start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", sinkURL, "--metrics-addr", metrics, "--unhealthy-after", "5s")
	n, rate := size(30_000, 100_000), size(3000, 5000)
	prod := produceUsers(t, s, n, rate)
	before := waitAbove(t, sinkURL, n/5, 60*time.Second)
	pg.Stop(t)
	stopped := time.Now()
	rssAtStop, peak := rss(w.Pid()), int64(0)
	unhealthy := ""
	for time.Since(stopped) < 15*time.Second {
		peak = max(peak, rss(w.Pid()))
		if code, body := healthz(t, metrics); code == 503 {
			unhealthy = body
		}
		time.Sleep(500 * time.Millisecond) // paces the sampling through the outage
	}
	if !strings.Contains(unhealthy, "sink upsert failing") {
		t.Errorf("/healthz never said the sink is failing while PostgreSQL was down (last 503 body %q)", unhealthy)
	}
	pg.Start(t)
	back := time.Now()
	// Resumed: the row count moves within 5 s of the server's return (past
	// what it held then: rows written before the stop count too).
	atBack := proctest.Count(t, sinkURL)
	resumed := waitAbove(t, sinkURL, max(before, atBack), 30*time.Second)
	resumeAfter := time.Since(back)
	if resumeAfter > 5*time.Second+2*time.Second { // 2 s: one `users count` process
		t.Errorf("the stream resumed %.1fs after PostgreSQL came back, want within 5 s", resumeAfter.Seconds())
	}
	if grew := peak - rssAtStop; grew > 64<<20 {
		t.Errorf("the worker's RSS grew by %d MiB while PostgreSQL was down; it should stop polling", grew>>20)
	}
	// Healthy again once a write has gone through.
	testwait.For(t, 10*time.Second, "/healthz 200 after PostgreSQL came back", func() (string, bool) {
		code, body := healthz(t, metrics)
		return fmt.Sprintf("%d %q", code, body), code == 200
	})
	converge(t, s, prod, sinkURL, 0, fmt.Sprintf("PostgreSQL down 15 s; /healthz 503 while down; rows moved again %.1fs after it came back (%d -> %d); RSS %d MiB at stop, peak %d MiB while down",
		resumeAfter.Seconds(), before, resumed, rssAtStop>>20, peak>>20))
}

// TestSilentServers: a PostgreSQL, a Cassandra, a Kafka broker and a Schema Registry that
// accept connections and never answer. Each command fails within a bounded,
// documented time (docs/reliability.md) and names the server; none hangs.
func TestSilentServers(t *testing.T) {
	skipShort(t)
	silent := silentServer(t)
	s := proctest.StartStack(t)
	cases := []struct {
		name  string
		args  []string
		bound time.Duration
		want  string
	}{
		{"postgres: users count", []string{"users", "count", "--sink", "postgres://u@" + silent + "/db?sslmode=disable"}, 15 * time.Second, silent},
		{"postgres: stream", []string{"stream", "--brokers", s.Kafka, "--schema-registry", "none", "--metrics-addr", "",
			"--sink", "postgres://u@" + silent + "/db?sslmode=disable"}, 15 * time.Second, silent},
		{"cassandra: users count", []string{"users", "count", "--sink", "cassandra://" + silent + "/spark_streams"}, 15 * time.Second, silent},
		{"cassandra: stream", []string{"stream", "--brokers", s.Kafka, "--schema-registry", "none", "--metrics-addr", "",
			"--sink", "cassandra://" + silent + "/spark_streams"}, 15 * time.Second, silent},
		{"kafka: produce", []string{"produce", "--brokers", silent, "--source", s.SourceURL(), "--users", "10"}, 15 * time.Second, silent},
		{"kafka: stream", []string{"stream", "--brokers", silent, "--sink", s.Sink, "--metrics-addr", ""}, 15 * time.Second, silent},
		{"kafka: topics list", []string{"topics", "list", "--brokers", silent}, 15 * time.Second, silent},
		{"registry: produce", []string{"produce", "--brokers", s.Kafka, "--schema-registry", "http://" + silent,
			"--source", s.SourceURL(), "--users", "10"}, 15 * time.Second, silent},
		{"api: produce", []string{"produce", "--brokers", s.Kafka, "--schema-registry", "none",
			"--source", "http://" + silent + "/api/", "--users", "10"}, 75 * time.Second, silent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), c.bound+30*time.Second)
			defer cancel()
			start := time.Now()
			_, errOut, code := proctest.RunContext(ctx, t, c.args...)
			took := time.Since(start)
			if code == 0 {
				t.Fatalf("exit 0 against a silent server; stderr:\n%s", errOut)
			}
			if took > c.bound {
				t.Errorf("took %.1fs, over its bound of %s", took.Seconds(), c.bound)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("the error does not name the server %s:\n%s", c.want, errOut)
			}
			t.Logf("FIGURES %s exit=%d after %.1fs: %s", t.Name(), code, took.Seconds(), firstLine(errOut))
		})
	}
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "userstream:") {
			return l
		}
	}
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// TestRegistryDown: the stream's way to the Schema Registry (a proxy the
// test controls) is cut at the worker's start, and again mid-stream while
// the worker is replaced and a message with a schema id the registry never
// had arrives. Workers wait for the registry instead of failing; records
// wait while it is away; none is lost, and only the message whose schema id
// is truly unknown is dead-lettered, once the registry can say so.
func TestRegistryDown(t *testing.T) {
	skipShort(t)
	s := proctest.StartStack(t)
	px := startProxy(t, s.Registry)
	px.pause()
	n := size(20_000, 100_000)
	// Avro written through the real registry; the worker reaches it
	// through the proxy and must fetch the writer schema to decode.
	prod := produceUsers(t, s, n, size(4000, 5000))
	w := worker(t, s, "stream-1", s.Sink, "--schema-registry", "http://"+px.addr)
	// The registry stays away for 3 s (the fault); all along the worker
	// stores nothing and does not give up.
	testwait.Holds(t, 3*time.Second, "a running worker storing nothing without a registry", func() (string, bool) {
		if w.Exited() {
			t.Fatalf("the worker gave up on the registry at start:\n%s", w.Output())
		}
		got := proctest.Count(t, s.Sink)
		return fmt.Sprintf("%d users stored", got), got == 0
	}, testwait.Every(500*time.Millisecond))
	px.resume()
	waitAbove(t, s.Sink, n/4, 60*time.Second)
	px.pause()
	w.Kill(t)
	worker(t, s, "stream-2", s.Sink, "--schema-registry", "http://"+px.addr)
	produceRaw(t, s.Kafka, []byte{0, 0, 0, 0x27, 0x0f, 2, 'x'}) // Confluent header, schema id 9999
	// The outage mid-stream: a deliberate fault.
	time.Sleep(5 * time.Second)
	px.resume()
	converge(t, s, prod, s.Sink, 0, "registry away at start (3 s) and mid-stream (5 s, worker replaced)")
	dl := deadLetters(t, s.Kafka)
	if len(dl) != 1 || !strings.Contains(headers(dl[0])["userstream.error"], "unknown schema id 9999") {
		var got []string
		for _, r := range dl {
			got = append(got, headers(r)["userstream.error"])
		}
		t.Errorf("dead letters = %q; want exactly the message of unknown schema id 9999", got)
	}
}

// healthz GETs a worker's /healthz.
func healthz(t *testing.T, addr string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
