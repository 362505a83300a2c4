package randomuser

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientAgainstFaultyHandler runs the client against the package's own
// API handler injecting 5xx and garbage bodies on a share of requests: with
// enough retries every Get succeeds and returns exactly the users the
// generator makes for those parameters.
func TestClientAgainstFaultyHandler(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	gen := NewGenerator(WithClock(now))
	srv := httptest.NewServer(NewHandler(WithGenerator(NewGenerator(WithClock(now))),
		WithFailRate(0.3), WithGarbageRate(0.3), WithFaultSeed(42)))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	c := newTestClient(t, srv.URL+"/api/", WithRetries(20, time.Millisecond, 2*time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	for page := 1; page <= 20; page++ {
		p := Params{Results: 50, Seed: "faulty", Page: page, Nat: []string{"fr", "gb", "no", "us", "ir"}}
		got, err := c.Get(t.Context(), p)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		want, err := gen.Generate(p)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Fatalf("page %d: client got\n%.300s\nwant\n%.300s", page, gb, wb)
		}
	}
	// The faults did happen: 20 requests at 30% + 30% fault rates.
	if n := strings.Count(logs.String(), "randomuser: retrying"); n < 5 {
		t.Errorf("only %d retries logged; were faults injected?\n%s", n, logs.String())
	}
}

// TestClientAgainstAlwaysFailingHandler checks the error a caller sees when
// the server never recovers.
func TestClientAgainstAlwaysFailingHandler(t *testing.T) {
	tests := []struct {
		name string
		opt  HandlerOption
		want error
	}{
		{"5xx", WithFailRate(1), nil},
		{"garbage", WithGarbageRate(1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(NewHandler(tt.opt, WithFaultSeed(7)))
			t.Cleanup(srv.Close)
			c := newTestClient(t, srv.URL+"/api/", fast(2))
			_, err := c.Get(t.Context(), Params{Results: 10, Seed: "x"})
			var re *RequestError
			if !errors.As(err, &re) || re.Attempts != 3 {
				t.Fatalf("err = %v, want a *RequestError after 3 attempts", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && re.Status < 500 {
				t.Errorf("status %d, want 5xx: %v", re.Status, err)
			}
		})
	}
}

// TestClientFullPageFromHandler fetches the API's largest response through
// the default body cap.
func TestClientFullPageFromHandler(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL+"/api/1.4/")
	resp, err := c.Get(t.Context(), Params{Results: MaxResults, Seed: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != MaxResults || resp.Info == nil || resp.Info.Results != MaxResults {
		t.Fatalf("got %d users, info %+v", len(resp.Results), resp.Info)
	}
}
