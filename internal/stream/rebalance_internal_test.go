package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/user"
)

// backlogClient is a test double of a group member's *kgo.Client with an
// endless backlog: every poll returns a full batch at once, until total
// records. It carries a rebalanceSignal the way ConsumerOpts' clients do,
// raises it (as kgo's OnPartitionsCallbackBlocked would) once signalAt
// records have been polled, and records what the session had committed
// each time it let rebalances through.
type backlogClient struct {
	sig             *rebalanceSignal
	total, signalAt int64

	mu        sync.Mutex
	polled    int64
	committed int64   // offset after the last commit
	allows    []allow // one per AllowRebalance
}

type allow struct{ polled, committed int64 }

func (c *backlogClient) PollRecords(ctx context.Context, n int) kgo.Fetches {
	c.mu.Lock()
	start := c.polled
	end := min(start+int64(n), c.total)
	c.polled = end
	if start < c.signalAt && end >= c.signalAt {
		c.sig.blocked(ctx, nil)
	}
	c.mu.Unlock()
	if start == end {
		<-ctx.Done() // the backlog is done: wait like an idle topic
		return nil
	}
	var recs []*kgo.Record
	for off := start; off < end; off++ {
		v, err := json.Marshal(user.Record{ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Append(nil, off)).String(),
			FirstName: "Ada", LastName: "Lovelace", Gender: "female", Address: "1 Street, Town, Region, Country",
			PostCode: "1", Email: "ada@example.com", Username: "ada", DOB: "1990-01-01T00:00:00.000Z",
			RegisteredDate: "2020-01-01T00:00:00.000Z", Phone: "1", Picture: "https://example.com/a.jpg", Nat: "GB"})
		if err != nil {
			panic(err)
		}
		recs = append(recs, &kgo.Record{Topic: "users_created", Partition: 0, Offset: off, Value: v})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "users_created",
		Partitions: []kgo.FetchPartition{{Partition: 0, Records: recs}}}}}}
}

func (c *backlogClient) AllowRebalance() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allows = append(c.allows, allow{c.polled, c.committed})
}

func (c *backlogClient) CommitRecords(_ context.Context, rs ...*kgo.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		c.committed = max(c.committed, r.Offset+1)
	}
	return nil
}

func (c *backlogClient) ProduceSync(context.Context, ...*kgo.Record) kgo.ProduceResults { return nil }
func (c *backlogClient) Close()                                                         {}

// OptValues answers kgo.WithHooks as a *kgo.Client built with the signal
// does.
func (c *backlogClient) OptValues(any) []any { return []any{[]kgo.Hook{c.sig}} }

// slowSink takes a while over every batch, so the poller is always ahead
// of the writer, as on a backed-up topic.
type slowSink struct{}

func (slowSink) Upsert(ctx context.Context, _ []user.Record) error {
	select {
	case <-time.After(15 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

// TestRebalanceLetThroughOnlyWhenOneWaits: on a backed-up topic a session
// keeps its pipeline full (letting rebalances through drains it) until a
// rebalance waits; then it stores and commits every batch in hand, lets the
// rebalance through, and goes on. The signal comes after 45 of 60 batches,
// which take the slow sink about 0.7 s: later than rebalanceEvery, the period
// at which a client without the signal lets rebalances through.
func TestRebalanceLetThroughOnlyWhenOneWaits(t *testing.T) {
	const batch, total, signalAt = 100, 6000, 4500
	cl := &backlogClient{sig: &rebalanceSignal{}, total: total, signalAt: signalAt}
	cfg := Config{BatchSize: batch}
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSession(ctx, cl, user.JSON{}, slowSink{}, cfg) }()
	testwait.For(t, 30*time.Second, "the backlog committed", func() (int64, bool) {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.committed, cl.committed == total
	}, testwait.Every(5*time.Millisecond))
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("session: %v", err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var during []allow // let through while the backlog lasted
	for _, a := range cl.allows {
		if a.polled > 0 && a.polled < total {
			during = append(during, a)
		}
	}
	if len(during) != 1 {
		t.Fatalf("rebalances let through %d times during the backlog, want once (when one waited): %+v", len(during), cl.allows)
	}
	a := during[0]
	if a.polled < signalAt {
		t.Fatalf("rebalances let through at %d records polled, before one waited (at %d)", a.polled, signalAt)
	}
	if a.committed != a.polled {
		t.Fatalf("rebalance let through with batches in hand: %d records polled, %d committed", a.polled, a.committed)
	}
	if cl.sig.waiting.Load() {
		t.Fatal("the signal is still raised after the rebalance was let through")
	}
}
