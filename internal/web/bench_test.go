package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/stream"
)

// benchRows is how many users (messages and rows) BenchmarkPages fills:
// $USERSTREAM_BENCH_ROWS, 1,000,000 by default (about a minute to fill).
func benchRows(b *testing.B) int {
	if v := os.Getenv("USERSTREAM_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("USERSTREAM_BENCH_ROWS=%q: want a number of at least 1000", v)
		}
		return n
	}
	return 1_000_000
}

// BenchmarkPages measures the Users page and the message browser, as a
// browser asks for them (logged in, whole HTML pages over HTTP), with the
// topic and the SQLite sink holding a million users each. Each case
// reports the p50 and p95 of its requests.
//
//	go test -run '^$' -bench Pages -benchtime 200x -timeout 30m ./internal/web/
func BenchmarkPages(b *testing.B) {
	rows := benchRows(b)
	f := newFixture(b)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	src, err := f.st.Source()
	if err != nil {
		b.Fatal(err)
	}
	prod, err := f.st.Producer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	stats, err := ingest.Run(ctx, src, prod, f.st.Encoder, ingest.Config{Users: rows, BatchSize: 5000, SourceName: "builtin"})
	if err != nil {
		b.Fatal(err)
	}
	prod.Close()
	mid := start.Add(time.Since(start) / 2).UTC().Format(time.RFC3339) // a time within the produce
	f.startStream(b)
	f.waitStored(b, int64(rows), 15*time.Minute)
	b.Logf("filled %d messages and rows in %v", rows, time.Since(start).Round(time.Second))

	// The cursor nine tenths of the way down, walked to once.
	deep := ""
	for i := 0; i < rows*9/10/sink.MaxPageLimit; i++ {
		p, err := f.st.Sink.Page(ctx, sink.PageQuery{Limit: sink.MaxPageLimit, After: deep})
		if err != nil {
			b.Fatal(err)
		}
		deep = p.Next
	}
	somebody, err := f.st.Sink.Page(ctx, sink.PageQuery{Limit: 1, After: deep})
	if err != nil || len(somebody.Users) != 1 {
		b.Fatalf("a user deep down: %v", err)
	}
	last, who := somebody.Users[0].LastName, somebody.Users[0]

	c := f.loggedIn(b, login.AdminUser, adminPassword)
	const userRow, messageRow = `class="name"`, `class="format"`
	for _, bc := range []struct{ name, path, row string }{
		{"users/first", "/users", userRow},
		{"users/deep", "/users?after=" + deep, userRow},
		{"users/nat", "/users?nat=FR", userRow},
		{"users/search-common", "/users?q=" + url.QueryEscape(last), userRow}, // a last name: many match
		{"users/search-none", "/users?q=no-such-user-zq", ">no user<"},        // the worst case: the whole table read
		{"messages/newest", "/topics/" + broker.Topic + "/messages?limit=50", messageRow},
		{"messages/offset", fmt.Sprintf("/topics/%s/messages?mode=offset&partition=0&offset=%d&limit=50", broker.Topic, rows/6), messageRow},
		{"messages/time", fmt.Sprintf("/topics/%s/messages?mode=time&from=%s&limit=50", broker.Topic, mid), messageRow},
		{"messages/filter", "/topics/" + broker.Topic + "/messages?limit=500&filter=" + url.QueryEscape(last), messageRow},
		// The pages around them, at the same million.
		{"overview", "/", `id="stored"`},
		{"topics", "/topics", broker.Topic},
		{"topic", "/topics/" + broker.Topic, `id="search-link"`},
		{"groups", "/groups", stream.DefaultGroup},
		{"workers", "/workers", `class="workers"`},
		{"users/run", "/users?run=" + url.QueryEscape(stats.RunID), userRow}, // all million are of this run
		{"lineage", "/users/" + who.ID, `id="message-offset"`},               // its message looked up in Kafka,
		// The search reads the whole topic for one user's e-mail.
		{"search/email", "/topics/" + broker.Topic + "/search?run=1&field=email&value=" + url.QueryEscape(who.Email), `<td class="key">`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				resp := c.get(bc.path)
				took = append(took, time.Since(t0))
				if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, bc.row) {
					b.Fatalf("GET %s: %d, no row: %.300s", bc.path, resp.StatusCode, resp.body)
				}
			}
			slices.Sort(took)
			q := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
		})
	}
}
