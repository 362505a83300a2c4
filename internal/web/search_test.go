package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/schema/schematest"
)

// searchEvent is a line of the search's NDJSON twin.
type searchEvent struct {
	Type       string                `json:"type"`
	Scanned    int64                 `json:"scanned"`
	Matched    int                   `json:"matched"`
	ElapsedMS  int64                 `json:"elapsed_ms"`
	Partitions []broker.ScanPosition `json:"partitions"`
	Stopped    string                `json:"stopped"`
	Summary    string                `json:"summary"`
	Error      string                `json:"error"`
	Message    *struct {
		Partition int32             `json:"partition"`
		Offset    int64             `json:"offset"`
		Key       string            `json:"key"`
		Headers   map[string]string `json:"headers"`
		Value     struct {
			Format string `json:"format"`
			Text   string `json:"text"`
		} `json:"value"`
	} `json:"message"`
}

// search runs a search through the JSON twin and returns its lines.
func (c *client) search(topic string, q url.Values) (int, []searchEvent) {
	c.t.Helper()
	resp := c.get("/api/ui/topics/" + topic + "/search?" + q.Encode())
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, []searchEvent{{Type: "error", Error: resp.body}}
	}
	var out []searchEvent
	sc := bufio.NewScanner(strings.NewReader(resp.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e searchEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			c.t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return resp.StatusCode, out
}

// produceUsers sends users from to to-1 (schematest.Sample, each with its
// own email) to users_created, as the producer encodes them, with the
// ingest's source header.
func (f *fixture) produceUsers(t testing.TB, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+time.Duration(to-from)*time.Millisecond)
	defer cancel()
	prod, err := f.st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var failed atomic.Pointer[error]
	for i := from; i < to; i++ {
		u := schematest.Sample(i)
		u.Email = fmt.Sprintf("user.%d@example.org", i)
		v, err := f.st.Encoder.Encode(u)
		if err != nil {
			t.Fatal(err)
		}
		prod.Produce(ctx, &kgo.Record{Topic: broker.Topic, Key: []byte(u.ID), Value: v,
			Headers: []kgo.RecordHeader{{Key: ingest.HeaderSource, Value: []byte("builtin")}}}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
}

// TestSearch produces N users (20,000; USERSTREAM_SEARCH_USERS=1000000 for
// the long form) around one needle user, and finds the needle by
// its email, its key and a header, checking where it was produced and
// that the whole topic was scanned.
func TestSearch(t *testing.T) {
	n := 20_000
	if v := os.Getenv("USERSTREAM_SEARCH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("USERSTREAM_SEARCH_USERS=%q: give a number of users, at least 2", v)
		}
	}
	f := newFixture(t)
	began := time.Now()
	// n messages in all: the needle and n-1 others.
	f.produceUsers(t, 0, (n-1)/2)
	needle := schematest.Sample(n)
	needle.Email = "needle.7f3a@example.org"
	val, err := f.st.Encoder.Encode(needle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := f.st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := prod.ProduceSync(ctx, &kgo.Record{Topic: broker.Topic, Key: []byte(needle.ID), Value: val,
		Headers: []kgo.RecordHeader{{Key: ingest.HeaderSource, Value: []byte("needle-source")}}}).First()
	prod.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.produceUsers(t, (n-1)/2, n-1)
	t.Logf("produced %d users in %s", n, time.Since(began).Round(time.Millisecond))
	c := f.loggedIn(t, "viewer", viewerPassword)

	for _, tc := range []struct {
		name string
		q    url.Values
	}{
		{"by an email in the Avro value", url.Values{"field": {"email"}, "value": {needle.Email}}},
		{"by the key", url.Values{"key": {needle.ID}}},
		{"by a header and a part of the email", url.Values{"header": {ingest.HeaderSource + "=needle-source"}, "field": {"email"}, "value": {"needle.7f3a"}, "match": {"contains"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, events := c.search(broker.Topic, tc.q)
			if status != http.StatusOK || len(events) == 0 {
				t.Fatalf("%d %+v", status, events)
			}
			var matches []searchEvent
			for _, e := range events {
				if e.Type == "match" {
					matches = append(matches, e)
				}
			}
			done := events[len(events)-1]
			if done.Type != "done" || done.Stopped != "end" || done.Matched != 1 || len(matches) != 1 {
				t.Fatalf("the last event %+v after %d matches: want done at the end with 1 match", done, len(matches))
			}
			m := matches[0].Message
			if m.Partition != at.Partition || m.Offset != at.Offset || m.Key != needle.ID || !strings.Contains(m.Value.Text, needle.Email) {
				t.Fatalf("matched %+v, want partition %d offset %d, key %s", m, at.Partition, at.Offset, needle.ID)
			}
			if done.Scanned != int64(n) {
				t.Fatalf("scanned %d, want every one of the %d messages", done.Scanned, n)
			}
			var ranged int64
			for _, p := range done.Partitions {
				if p.Next != p.End {
					t.Errorf("partition %d read to %d of %d", p.Partition, p.Next, p.End)
				}
				ranged += p.End - p.Start
			}
			if ranged != int64(n) || !strings.Contains(done.Summary, "1 match in "+strconv.Itoa(n)+" messages scanned") {
				t.Fatalf("partitions %+v (%d messages), summary %q", done.Partitions, ranged, done.Summary)
			}
			t.Logf("%s: %d messages scanned in %d ms (shared machine)", tc.name, done.Scanned, done.ElapsedMS)
		})
	}

	t.Run("nothing found says what was scanned, over which offsets, in how long", func(t *testing.T) {
		_, events := c.search(broker.Topic, url.Values{"field": {"email"}, "value": {"nobody@example.org"},
			"partition": {strconv.Itoa(int(at.Partition))}, "from_offset": {"1"}, "to_offset": {"101"}})
		done := events[len(events)-1]
		if done.Type != "done" || done.Matched != 0 || done.Scanned != 100 || len(done.Partitions) != 1 ||
			!strings.Contains(done.Summary, "0 matches in 100 messages scanned") ||
			!strings.Contains(done.Summary, "partition "+strconv.Itoa(int(at.Partition))+" offsets 1–100)") {
			t.Fatalf("%+v", done)
		}
	})

	t.Run("bounds: max scanned and max results stop the scan and say so", func(t *testing.T) {
		_, events := c.search(broker.Topic, url.Values{"field": {"email"}, "value": {"nobody@example.org"}, "max_scanned": {"500"}})
		if done := events[len(events)-1]; done.Stopped != "max_scanned" || done.Scanned != 500 || !strings.Contains(done.Summary, "limit of 500 messages scanned") {
			t.Fatalf("%+v", done)
		}
		// A bound met at the very last message read everything: the end.
		_, events = c.search(broker.Topic, url.Values{"key": {needle.ID}, "max_scanned": {strconv.Itoa(n)}})
		if done := events[len(events)-1]; done.Stopped != "end" || done.Scanned != int64(n) {
			t.Fatalf("%+v", done)
		}
		_, events = c.search(broker.Topic, url.Values{"header": {ingest.HeaderSource}, "max_results": {"3"}})
		if done := events[len(events)-1]; done.Stopped != "max_results" || done.Matched != 3 || len(events) < 4 {
			t.Fatalf("%+v", done)
		}
	})

	t.Run("a secret the pages hide cannot be found by guessing it", func(t *testing.T) {
		f.produceRaw(t, broker.DLQTopic, []byte("cfg"), []byte(`{"connection.password": "hunter2-secret", "name": "sink"}`), nil)
		for _, q := range []url.Values{
			{"field": {"connection.password"}, "value": {"hunter2-secret"}},
			{"value": {"hunter2"}},
		} {
			_, events := c.search(broker.DLQTopic, q)
			if done := events[len(events)-1]; done.Type != "done" || done.Matched != 0 || done.Scanned != 1 {
				t.Fatalf("%v: %+v, want the message scanned and not matched", q, done)
			}
		}
		_, events := c.search(broker.DLQTopic, url.Values{"field": {"name"}, "value": {"sink"}})
		if done := events[len(events)-1]; done.Matched != 1 || strings.Contains(events[0].Message.Value.Text, "hunter2") {
			t.Fatalf("%+v", events)
		}
	})

	t.Run("a bad query says why", func(t *testing.T) {
		for q, says := range map[string]string{
			"":                          "give a key, a value or a header",
			"key=a&max_scanned=2000000": "max_scanned",
			"key=a&from_offset=x":       "from_offset",
			"key=a&match=like":          "match",
			"field=email":               "give the value",
		} {
			resp := c.get("/api/ui/topics/" + broker.Topic + "/search?" + q)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.body, says) {
				t.Errorf("%q: %d %s, want 400 saying %q", q, resp.StatusCode, resp.body, says)
			}
		}
	})

	t.Run("the page runs the search without JavaScript, escaped", func(t *testing.T) {
		resp := c.get("/topics/" + broker.Topic + "/search?run=1&field=email&value=" + url.QueryEscape(needle.Email))
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "1 match in") || !strings.Contains(resp.body, needle.Email) ||
			!strings.Contains(resp.body, "Rue de l&#39;Abbé-Groult") {
			t.Fatalf("%d %.2000s", resp.StatusCode, resp.body)
		}
	})

	t.Run("the page's event stream", func(t *testing.T) {
		resp := c.get("/topics/" + broker.Topic + "/search/events?field=email&value=" + url.QueryEscape(needle.Email))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
			!strings.Contains(resp.body, "event: match\ndata: {") || !strings.Contains(resp.body, "event: done\ndata: {") {
			t.Fatalf("%d %s %.1000s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.body)
		}
	})

	t.Run("without a login: 401 for the twin, the login for the page", func(t *testing.T) {
		anon := f.client(t)
		if resp := anon.get("/api/ui/topics/" + broker.Topic + "/search?key=a"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("twin: %d", resp.StatusCode)
		}
		if resp := anon.get("/topics/" + broker.Topic + "/search?key=a"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("page: %d", resp.StatusCode)
		}
	})
}
