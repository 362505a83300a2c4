package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/cassandra"
	"github.com/userstream/userstream/internal/sink/cassandra/cassandratest"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/user"
)

// startDouble starts a CQL-protocol test double for the test.
func startDouble(t testing.TB, opts ...cassandratest.Option) *cassandratest.Double {
	t.Helper()
	d, err := cassandratest.Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// testURL is a sink URL for the double with short retry and reconnect
// intervals, so fault tests stay quick.
func testURL(d *cassandratest.Double, extra string) string {
	u := "cassandra://" + d.Addr() + "/spark_streams?consistency=local_quorum&retry_min=20ms&retry_max=500ms" +
		"&reconnect_interval=200ms&recreate_after=1s&timeout=2s&connect_timeout=1s"
	if extra != "" {
		u += "&" + extra
	}
	return u
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

func open(t testing.TB, rawURL string) *cassandra.Sink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := cassandra.Open(ctx, rawURL, cassandra.WithLogger(logger(t)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the sink contract suite against the driver and a
// fresh test double per case, including the broken-connection case the
// real node (TestConformanceReal) cannot serve to a shared node.
func TestConformance(t *testing.T) {
	doubles := sync.Map{} // sink -> double, for BreakConnection
	sinktest.Run(t, func(t *testing.T) sink.Sink {
		d := startDouble(t)
		s := open(t, testURL(d, ""))
		doubles.Store(s, d)
		return s
	},
		sinktest.TimePrecision(time.Millisecond),
		sinktest.NonAtomic(),
		sinktest.Rejects(badUTF8()),
		sinktest.BreakConnection(func(t *testing.T, s sink.Sink) {
			v, _ := doubles.Load(s)
			d := v.(*cassandratest.Double)
			d.Stop()
			time.Sleep(300 * time.Millisecond) // the outage: a deliberate fault
			if err := d.Restart(); err != nil {
				t.Fatal(err)
			}
		}),
	)
}

// badUTF8 is a valid record whose last name is not UTF-8: Cassandra refuses
// such a text value (TestConformanceReal), and so does the double.
func badUTF8() user.Record {
	r := sinktest.Record(9003)
	r.LastName = "bad \xff\xfe utf-8"
	return r
}

func TestOpenCreatesSchema(t *testing.T) {
	d := startDouble(t)
	open(t, testURL(d, "replication=NetworkTopologyStrategy:dc1=3,dc2=2"))
	repl, ok := d.Replication("spark_streams")
	if !ok {
		t.Fatal("keyspace spark_streams was not created")
	}
	want := map[string]string{"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3", "dc2": "2"}
	if fmt.Sprint(repl) != fmt.Sprint(want) {
		t.Fatalf("replication = %v, want %v", repl, want)
	}
	cols := d.Columns("spark_streams", "created_users")
	for _, c := range []string{"id", "first_name", "last_name", "gender", "address", "post_code", "email", "username",
		"dob", "registered_date", "phone", "picture", "nat", "ingested_at", "run_id"} {
		if _, ok := cols[c]; !ok {
			t.Errorf("created_users has no column %s (columns: %v)", c, cols)
		}
	}
	if cols["id"] != "uuid" || cols["ingested_at"] != "timestamp" || cols["dob"] != "text" {
		t.Errorf("column types = %v, want id uuid, ingested_at timestamp, dob text", cols)
	}
	// A second Open finds the schema and leaves it.
	open(t, testURL(d, ""))
}

func TestAuthentication(t *testing.T) {
	d := startDouble(t, cassandratest.WithCredentials("cassandra", "s3cret!"))
	s := open(t, strings.Replace(testURL(d, ""), "://", "://cassandra:"+url.PathEscape("s3cret!")+"@", 1))
	if err := s.Upsert(t.Context(), sinktest.Records(0, 3)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := cassandra.Open(ctx, strings.Replace(testURL(d, ""), "://", "://cassandra:wrong-horse@", 1))
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-horse") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// TestFaults scripts server-side failures during Upsert: every row must end
// up stored, none lost, and the faults must really have been served.
func TestFaults(t *testing.T) {
	cases := []struct {
		fault cassandratest.Fault
		n     int
	}{
		{cassandratest.WriteTimeout, 5},
		{cassandratest.Unavailable, 5},
		{cassandratest.DropConnection, 2},
	}
	for _, c := range cases {
		t.Run(c.fault.String(), func(t *testing.T) {
			d := startDouble(t)
			s := open(t, testURL(d, "concurrency=8"))
			batch := sinktest.Records(0, 200)
			d.FailNext(c.fault, c.n)
			if err := s.Upsert(t.Context(), batch); err != nil {
				t.Fatalf("Upsert with %d scripted %s faults: %v", c.n, c.fault, err)
			}
			if got := d.Injected(c.fault); got != c.n {
				t.Fatalf("the double served %d %s faults, want %d", got, c.fault, c.n)
			}
			n, err := s.Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(batch)) || d.Rows("spark_streams", "created_users") != len(batch) {
				t.Fatalf("Count = %d, double holds %d rows; want %d", n, d.Rows("spark_streams", "created_users"), len(batch))
			}
			for _, r := range batch {
				if _, err := s.Get(t.Context(), r.ID); err != nil {
					t.Fatalf("row %s lost: %v", r.ID, err)
				}
			}
		})
	}
}

// TestFaultsExhaustRetries checks that a fault that outlasts every retry
// is reported, with the server's error inside.
func TestFaultsExhaustRetries(t *testing.T) {
	d := startDouble(t)
	s := open(t, testURL(d, "retries=1&concurrency=1"))
	d.FailNext(cassandratest.WriteTimeout, 100)
	err := s.Upsert(t.Context(), sinktest.Records(0, 1))
	if err == nil {
		t.Fatal("Upsert succeeded through 100 write timeouts with retries=1")
	}
	if !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %v does not carry the server's write timeout", err)
	}
}

// TestNodeRestart stops the double while a write is pending and brings it
// back on the same port: the same sink, not reopened, finishes the write.
func TestNodeRestart(t *testing.T) {
	d := startDouble(t)
	s := open(t, testURL(d, "retries=20"))
	if err := s.Upsert(t.Context(), sinktest.Records(0, 50)); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	done := make(chan error, 1)
	go func() { done <- s.Upsert(t.Context(), sinktest.Records(50, 50)) }()
	time.Sleep(1500 * time.Millisecond) // the outage (a deliberate fault), long enough for "no hosts available"
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Upsert across the restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Upsert did not finish within 30s of the restart")
	}
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Fatalf("Count = %d, want 100", n)
	}
}

func TestStatementsAreChecked(t *testing.T) {
	// The double refuses what a server refuses: this guards the double
	// itself, so the sink's tests mean something.
	d := startDouble(t)
	s := open(t, testURL(d, ""))
	_ = s
	for _, q := range []string{
		"SELECT * FROM spark_streams.created_users WHERE first_name = 'x'",
		"SELECT * FROM spark_streams.no_such_table",
		"INSERT INTO spark_streams.created_users (first_name) VALUES (?)",
		"DROP TABLE spark_streams.created_users",
	} {
		if err := cassandratest.Check(d, q); err == nil {
			t.Errorf("the double accepted %q", q)
		}
	}
	if err := cassandratest.Check(d, "SELECT id FROM spark_streams.created_users WHERE id = ?"); err != nil {
		t.Errorf("the double refused a valid statement: %v", err)
	}
}

func TestClosedSinkErrors(t *testing.T) {
	d := startDouble(t)
	s := open(t, testURL(d, ""))
	s.Close()
	if err := s.Upsert(t.Context(), sinktest.Records(0, 1)); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Upsert after Close = %v", err)
	}
	if err := s.Upsert(t.Context(), []user.Record{{ID: "x"}}); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Upsert of a bad record after Close = %v", err)
	}
}

// TestPageScanIsBounded pages with a filter that only the oldest of
// PageScan+300 users matches: the first call examines PageScan entries
// and returns no user with a Next that resumes there; following it finds
// the user, and every entry is examined once.
func TestPageScanIsBounded(t *testing.T) {
	d := startDouble(t)
	s := open(t, testURL(d, ""))
	n := cassandra.PageScan + 300
	batch := sinktest.Records(0, n)
	batch[0].Nat = "ZZ"
	for i := 0; i < n; i += 1000 {
		if err := s.Upsert(t.Context(), batch[i:min(i+1000, n)]); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Page(t.Context(), sink.PageQuery{Limit: 10, Nat: "zz"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Users) != 0 || p.Next == "" {
		t.Fatalf("first call = %d users, Next %q; want none and a cursor (the scan stopped)", len(p.Users), p.Next)
	}
	p, err = s.Page(t.Context(), sink.PageQuery{Limit: 10, Nat: "zz", After: p.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Users) != 1 || p.Users[0].ID != batch[0].ID || p.Next != "" {
		t.Fatalf("second call = %d users, Next %q; want the ZZ user and no more", len(p.Users), p.Next)
	}
}
