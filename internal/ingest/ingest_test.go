package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/user"
)

// fakeSource is a test double of the Random User API: each request returns
// users derived from seed and page, and it can be told to fail.
type fakeSource struct {
	mu       sync.Mutex
	requests []randomuser.Params
	failAt   int // fail the request with this 1-based number (0: never)
	most     int // answer at most this many users a request (0: as asked; -1: none)
}

func (s *fakeSource) Get(_ context.Context, p randomuser.Params) (randomuser.Response, error) {
	s.mu.Lock()
	s.requests = append(s.requests, p)
	nreq := len(s.requests)
	s.mu.Unlock()
	if s.failAt > 0 && nreq >= s.failAt {
		return randomuser.Response{}, errors.New("HTTP 503 after 4 attempts (scripted)")
	}
	var resp randomuser.Response
	n := p.Results
	switch {
	case s.most < 0:
		n = 0
	case s.most > 0:
		n = min(n, s.most)
	}
	for i := range n {
		u := randomuser.User{Gender: "female", Email: "a.b@example.com", Nat: "FR",
			Name: randomuser.Name{First: "A", Last: "B"}}
		u.Login.UUID = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d/%d", p.Seed, p.Page, i)).String()
		u.Login.Username = "ab"
		u.Location.Postcode = randomuser.NumericPostcode(75001)
		resp.Results = append(resp.Results, u)
	}
	return resp, nil
}

func cluster(t *testing.T) *kgo.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "users_created"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, ingest.ProducerOpts("users_created")...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func consumeAll(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumeTopics("users_created"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		c.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestRunProducesExactlyTheAskedUsersKeyedWithHeaders(t *testing.T) {
	cl := cluster(t)
	src := &fakeSource{}
	s, err := ingest.Run(context.Background(), src, cl, user.JSON{},
		ingest.Config{Users: 1234, BatchSize: 500, Concurrency: 3, SourceName: "test", RunID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Produced != 1234 || s.Fetched != 1234 || s.Failed != 0 {
		t.Fatalf("summary %+v, want 1234 fetched and produced", s)
	}
	recs := consumeAll(t, cl, 1234)
	if len(recs) != 1234 {
		t.Fatalf("topic holds %d records, want 1234", len(recs))
	}
	pages := map[int]bool{}
	for _, p := range src.requests {
		if pages[p.Page] {
			t.Errorf("page %d requested twice", p.Page)
		}
		pages[p.Page] = true
		if p.Seed != "run-1" {
			t.Errorf("request seed %q, want the run id", p.Seed)
		}
	}
	ids := map[string]bool{}
	for _, r := range recs {
		u, err := user.DecodeJSON(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != u.ID {
			t.Fatalf("key %q != id %q", r.Key, u.ID)
		}
		ids[u.ID] = true
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[ingest.HeaderRunID] != "run-1" || h[ingest.HeaderSource] != "test" || h[ingest.HeaderFetchedAt] == "" {
			t.Fatalf("headers %v", h)
		}
		if u.RunID != "run-1" || u.PostCode != "75001" {
			t.Fatalf("record %+v", u)
		}
	}
	if len(ids) != 1234 {
		t.Fatalf("%d distinct ids, want 1234", len(ids))
	}
}

func TestSourceFailureFailsTheRunWithHonestCounts(t *testing.T) {
	cl := cluster(t)
	src := &fakeSource{failAt: 3}
	s, err := ingest.Run(context.Background(), src, cl, user.JSON{},
		ingest.Config{Users: 5000, BatchSize: 100, Concurrency: 1})
	if err == nil {
		t.Fatal("a run whose source fails must fail")
	}
	if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "page 3") {
		t.Errorf("error %q does not say what failed", err)
	}
	if s.Produced != 200 || s.Fetched != 200 {
		t.Errorf("summary %+v, want the 200 users of the two good pages", s)
	}
	if got := len(consumeAll(t, cl, 200)); got != 200 {
		t.Errorf("topic holds %d, want the 200 reported", got)
	}
}

func TestDurationBoundAndSeedRepeatability(t *testing.T) {
	cl := cluster(t)
	src := &fakeSource{}
	s, err := ingest.Run(context.Background(), src, cl, user.JSON{},
		ingest.Config{Duration: 300 * time.Millisecond, BatchSize: 50, Rate: 1000, Seed: "fixed"})
	if err != nil {
		t.Fatal(err)
	}
	// 1000 users/s for 0.3s: a few hundred at most, never unbounded.
	if s.Produced == 0 || s.Produced > 500 {
		t.Errorf("produced %d in 300ms at 1000/s", s.Produced)
	}
	for _, p := range src.requests {
		if p.Seed != "fixed" {
			t.Fatalf("seed %q, want the given seed", p.Seed)
		}
	}
	if _, err := ingest.Run(context.Background(), src, cl, user.JSON{}, ingest.Config{}); !errors.Is(err, ingest.ErrNoBound) {
		t.Errorf("unbounded run: %v, want ErrNoBound", err)
	}
}

// TestEmptySourceFails: a source that answers with no users fails the run
// with ErrNoUsers after MaxEmpty answers, backing off between them, for a
// count-bound and a time-bound run alike (it used to exit 0 having
// produced nothing, after hundreds of requests).
func TestEmptySourceFails(t *testing.T) {
	for _, cfg := range []ingest.Config{
		{Users: 1000, BatchSize: 100, Concurrency: 1},
		{Duration: 30 * time.Second, BatchSize: 100, Concurrency: 1},
	} {
		src := &fakeSource{most: -1}
		start := time.Now()
		s, err := ingest.Run(context.Background(), src, cluster(t), user.JSON{}, cfg)
		if !errors.Is(err, ingest.ErrNoUsers) {
			t.Fatalf("run %+v over an empty source: %v, want ErrNoUsers", cfg, err)
		}
		if s.Produced != 0 || len(src.requests) != ingest.MaxEmpty {
			t.Errorf("produced %d after %d requests; want 0 after %d", s.Produced, len(src.requests), ingest.MaxEmpty)
		}
		// 200+400+800+1600 ms of back-off between the five answers.
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("gave up after %s: the answers were not backed off", took)
		}
	}
}

// TestShortAnswersAreAskedAgain: a source that sends fewer users than asked
// still gives a count-bound run its whole count.
func TestShortAnswersAreAskedAgain(t *testing.T) {
	src := &fakeSource{most: 70}
	cl := cluster(t)
	s, err := ingest.Run(context.Background(), src, cl, user.JSON{}, ingest.Config{Users: 1000, BatchSize: 100, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.Produced != 1000 {
		t.Fatalf("produced %d, want 1000", s.Produced)
	}
	if got := len(consumeAll(t, cl, 1000)); got != 1000 {
		t.Fatalf("topic holds %d, want 1000", got)
	}
}
