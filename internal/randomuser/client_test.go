package randomuser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// okBody is a small valid response.
const okBody = `{"results":[{"gender":"female","name":{"title":"Ms","first":"Ann","last":"Lee"},"nat":"US"}],"info":{"seed":"x","results":1,"page":1,"version":"1.4"}}`

// fast are options that keep retry tests quick.
func fast(retries int) ClientOption {
	return WithRetries(retries, time.Millisecond, 2*time.Millisecond)
}

// scripted returns a server whose n-th request (0-based) is answered by
// steps[min(n, len-1)], and a counter of requests served.
func scripted(t *testing.T, steps ...http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		steps[min(i, len(steps)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func newTestClient(t *testing.T, base string, opts ...ClientOption) *Client {
	t.Helper()
	c, err := NewClient(base, opts...)
	if err != nil {
		t.Fatalf("NewClient(%q): %v", base, err)
	}
	return c
}

// recordSleeps replaces the client's sleep with one that records the
// waits and returns at once.
func recordSleeps(c *Client) *[]time.Duration {
	var mu sync.Mutex
	var got []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
		return ctx.Err()
	}
	return &got
}

func TestClientQuery(t *testing.T) {
	var got url.Values
	var hdr http.Header
	srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		got, hdr = r.URL.Query(), r.Header.Clone()
		io.WriteString(w, okBody)
	})
	tests := []struct {
		name string
		base string
		p    Params
		want url.Values
	}{
		{"zero params send nothing", "/api/", Params{}, url.Values{}},
		{"every param", "/api/1.4/", Params{Results: 5000, Seed: "abc", Page: 3, Gender: "female",
			Nat: []string{"fr", "GB"}, Inc: []string{"name", "nat"}, Exc: []string{"login"},
			Password: "upper,lower,8-16", Format: "pretty", NoInfo: true},
			url.Values{"results": {"5000"}, "seed": {"abc"}, "page": {"3"}, "gender": {"female"},
				"nat": {"fr,GB"}, "inc": {"name,nat"}, "exc": {"login"}, "password": {"upper,lower,8-16"},
				"format": {"pretty"}, "noinfo": {""}}},
		{"base query kept, params override", "/api/?nat=us&seed=base", Params{Seed: "mine"},
			url.Values{"nat": {"us"}, "seed": {"mine"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, srv.URL+tt.base, WithUserAgent("test-agent/1"))
			if _, err := c.Get(t.Context(), tt.p); err != nil {
				t.Fatalf("Get: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("query = %v, want %v", got, tt.want)
			}
			if hdr.Get("User-Agent") != "test-agent/1" || hdr.Get("Accept") != "application/json" {
				t.Errorf("headers = %v", hdr)
			}
		})
	}
}

// TestClientDecodesEveryReferenceNat serves the reference responses and
// fetches each nationality through the client.
func TestClientDecodesEveryReferenceNat(t *testing.T) {
	ref := referenceResponses(t)
	srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		raw, ok := ref[strings.ToUpper(r.URL.Query().Get("nat"))]
		if !ok {
			status(http.StatusBadRequest, `{"error":"unknown nat"}`)(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(raw)
	})
	c := newTestClient(t, srv.URL+"/api/")
	for _, nat := range allNats {
		resp, err := c.Get(t.Context(), Params{Results: 3, Seed: "userstream", Nat: []string{strings.ToLower(nat)}})
		if err != nil {
			t.Fatalf("%s: %v", nat, err)
		}
		if len(resp.Results) != 3 {
			t.Fatalf("%s: %d users", nat, len(resp.Results))
		}
		for _, u := range resp.Results {
			if u.Nat != nat || u.Login.UUID == "" || u.Location.Postcode.String() == "" {
				t.Errorf("%s: user decoded as %+v", nat, u)
			}
		}
	}
}

func TestClientRetriesThenSucceeds(t *testing.T) {
	tests := []struct {
		name  string
		steps []http.HandlerFunc
	}{
		{"5xx", []http.HandlerFunc{status(500, "boom"), status(502, ""), status(503, "busy"), status(200, okBody)}},
		{"408 and 504", []http.HandlerFunc{status(408, ""), status(504, "gateway"), status(200, okBody)}},
		{"truncated and garbage 200 bodies", []http.HandlerFunc{status(200, okBody[:len(okBody)/2]),
			status(200, "<html>oops</html>"), status(200, `{"results":"x"}`), status(200, okBody)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.steps...)
			c := newTestClient(t, srv.URL+"/api/", fast(5))
			resp, err := c.Get(t.Context(), Params{Results: 1})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if len(resp.Results) != 1 || resp.Results[0].Name.First != "Ann" {
				t.Errorf("response = %+v", resp)
			}
			if got, want := int(n.Load()), len(tt.steps); got != want {
				t.Errorf("server saw %d requests, want %d", got, want)
			}
		})
	}
}

// TestClientRetriesExhausted checks the final error: status, URL without
// secrets, attempt count, and the server's message.
func TestClientRetriesExhausted(t *testing.T) {
	srv, n := scripted(t, status(503, "fault injected"))
	base := strings.Replace(srv.URL, "http://", "http://alice:hunter2@", 1) + "/api/?token=s3cr3t"
	var logs bytes.Buffer
	c := newTestClient(t, base, fast(3), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	_, err := c.Get(t.Context(), Params{Results: 5000, Seed: "x", Password: "special,32"})
	if err == nil {
		t.Fatal("Get succeeded against a server that always fails")
	}
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("error %T is not a *RequestError: %v", err, err)
	}
	if re.Status != 503 || re.Attempts != 4 || n.Load() != 4 {
		t.Errorf("status %d, attempts %d, server saw %d; want 503, 4, 4", re.Status, re.Attempts, n.Load())
	}
	wantURL := strings.Replace(srv.URL, "http://", "http://alice:xxxxx@", 1) + "/api/?password=xxxxx&results=5000&seed=x&token=xxxxx"
	if re.URL != wantURL {
		t.Errorf("URL = %q, want %q", re.URL, wantURL)
	}
	msg := err.Error()
	for _, want := range []string{"randomuser: GET " + wantURL + ": HTTP 503 after 4 attempts: ", "503 Service Unavailable", "fault injected"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "special"} {
		if strings.Contains(msg, secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q leaked: error %q, logs %q", secret, msg, logs.String())
		}
	}
	if got := strings.Count(logs.String(), "randomuser: retrying"); got != 3 {
		t.Errorf("logged %d retries, want 3:\n%s", got, logs.String())
	}
}

func TestClientAPIErrorCarriesMessage(t *testing.T) {
	const msg = "Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you."
	tests := []struct {
		name         string
		code         int
		wantAttempts int
	}{
		{"in a 500, retried", 500, 3},
		{"in a 400, not retried", 400, 1},
		{"in a 200, not retried", 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, status(tt.code, `{"error":"`+msg+`"}`))
			c := newTestClient(t, srv.URL+"/api/", fast(2))
			_, err := c.Get(t.Context(), Params{})
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if apiErr.Message != msg || apiErr.StatusCode != tt.code {
				t.Errorf("APIError = %+v, want status %d and the API's message", apiErr, tt.code)
			}
			if int(n.Load()) != tt.wantAttempts {
				t.Errorf("server saw %d requests, want %d", n.Load(), tt.wantAttempts)
			}
			if !strings.Contains(err.Error(), "API error: "+msg) {
				t.Errorf("error %q lost the message", err)
			}
		})
	}
}

func TestClientDoesNotRetryClientErrors(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 501} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			srv, n := scripted(t, status(code, "no"))
			c := newTestClient(t, srv.URL+"/api/", fast(3))
			_, err := c.Get(t.Context(), Params{})
			var re *RequestError
			if !errors.As(err, &re) || re.Status != code || re.Attempts != 1 || n.Load() != 1 {
				t.Fatalf("err = %v (attempts via server %d), want HTTP %d after 1 attempt", err, n.Load(), code)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d after 1 attempt: ", code)) {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestClient429WaitsForRetryAfter(t *testing.T) {
	date := time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		retryAfter string
		code       int
		min, max   time.Duration
	}{
		{"seconds", "2", 429, 2 * time.Second, 2 * time.Second},
		{"HTTP date", date, 429, time.Second, 3 * time.Second},
		{"on 503 too", "1", 503, time.Second, time.Second},
		{"absent: backoff", "", 429, 0, 2 * time.Millisecond},
		{"unreadable: backoff", "soon", 429, 0, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.code)
			}, status(200, okBody))
			c := newTestClient(t, srv.URL+"/api/", fast(3))
			waits := recordSleeps(c)
			if _, err := c.Get(t.Context(), Params{}); err != nil {
				t.Fatalf("Get: %v", err)
			}
			if n.Load() != 2 || len(*waits) != 1 {
				t.Fatalf("requests %d, waits %v; want 2 requests, 1 wait", n.Load(), *waits)
			}
			if d := (*waits)[0]; d < tt.min || d > tt.max {
				t.Errorf("waited %v, want %v..%v", d, tt.min, tt.max)
			}
		})
	}
}

// TestClient429WaitEndsWithContext checks a long Retry-After does not hold
// the caller past its context.
func TestClient429WaitEndsWithContext(t *testing.T) {
	srv, n := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	})
	c := newTestClient(t, srv.URL+"/api/", fast(3))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, Params{})
	var re *RequestError
	if !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a *RequestError wrapping context.DeadlineExceeded", err)
	}
	if re.Status != 429 || re.Attempts != 1 || n.Load() != 1 {
		t.Errorf("status %d attempts %d requests %d, want 429, 1, 1", re.Status, re.Attempts, n.Load())
	}
	if !strings.Contains(err.Error(), "HTTP 429 after 1 attempt") {
		t.Errorf("message %q", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", -1}, {"0", 0}, {"7", 7 * time.Second}, {" 7 ", 7 * time.Second}, {"-3", -1}, {"1.5", -1},
		{"99999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Fri, 99 Foo 2026", -1},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestClientBodyCap(t *testing.T) {
	big := `{"results":[` + strings.Repeat(`{"nat":"US"},`, 200) + `{"nat":"US"}]}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"with Content-Length", status(200, big)},
		{"chunked, no Content-Length", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(big); i += 100 {
				io.WriteString(w, big[i:min(i+100, len(big))])
				w.(http.Flusher).Flush()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.handler)
			c := newTestClient(t, srv.URL+"/api/", fast(3), WithMaxBodyBytes(1024))
			_, err := c.Get(t.Context(), Params{Results: 201})
			if !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("err = %v, want ErrBodyTooLarge", err)
			}
			if n.Load() != 1 {
				t.Errorf("server saw %d requests; a body over the cap must not be retried", n.Load())
			}
			if !strings.Contains(err.Error(), "1024") {
				t.Errorf("message %q does not give the limit", err)
			}
			// The same body fits a larger cap.
			c = newTestClient(t, srv.URL+"/api/", WithMaxBodyBytes(int64(len(big))))
			if resp, err := c.Get(t.Context(), Params{}); err != nil || len(resp.Results) != 201 {
				t.Errorf("at the exact size: %d users, %v", len(resp.Results), err)
			}
		})
	}
}

// hang blocks until the request is abandoned (or 5s, so a broken client
// cannot hold the test server).
func hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func TestClientPerRequestTimeout(t *testing.T) {
	partial := func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, okBody[:20])
		w.(http.Flusher).Flush()
		hang(w, r)
	}
	t.Run("retried, then success", func(t *testing.T) {
		srv, n := scripted(t, hang, partial, status(200, okBody))
		c := newTestClient(t, srv.URL+"/api/", fast(3), WithTimeout(250*time.Millisecond))
		if _, err := c.Get(t.Context(), Params{}); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if n.Load() != 3 {
			t.Errorf("server saw %d requests, want 3", n.Load())
		}
	})
	for name, h := range map[string]http.HandlerFunc{"no headers": hang, "body stalls": partial} {
		t.Run("exhausted, "+name, func(t *testing.T) {
			srv, _ := scripted(t, h)
			c := newTestClient(t, srv.URL+"/api/", fast(1), WithTimeout(250*time.Millisecond))
			_, err := c.Get(t.Context(), Params{})
			var re *RequestError
			if !errors.As(err, &re) || !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want a *RequestError matching ErrTimeout", err)
			}
			if re.Attempts != 2 {
				t.Errorf("attempts = %d, want 2", re.Attempts)
			}
			if !strings.Contains(err.Error(), "after 2 attempts") || !strings.Contains(err.Error(), "250ms") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestClientGarbageExhausted(t *testing.T) {
	srv, n := scripted(t, status(200, `{"results":[{"name":"Bob"}]}`))
	c := newTestClient(t, srv.URL+"/api/", fast(2))
	_, err := c.Get(t.Context(), Params{})
	var de *DecodeError
	var re *RequestError
	if !errors.As(err, &de) || !errors.As(err, &re) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want a *RequestError wrapping a *DecodeError", err)
	}
	if de.Path != "results[0].name" || re.Status != 200 || re.Attempts != 3 || n.Load() != 3 {
		t.Errorf("path %q status %d attempts %d requests %d", de.Path, re.Status, re.Attempts, n.Load())
	}
	if !strings.Contains(err.Error(), "HTTP 200 after 3 attempts: malformed API response: results[0].name: want an object, got string") {
		t.Errorf("message %q", err)
	}
}

func TestClientContextCancelled(t *testing.T) {
	arrived := make(chan struct{}, 10)
	srv, n := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hang(w, r)
	})
	c := newTestClient(t, srv.URL+"/api/", fast(3))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Get(ctx, Params{})
	var re *RequestError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *RequestError wrapping context.Canceled", err)
	}
	if re.Attempts != 1 || n.Load() != 1 || errors.Is(err, ErrTimeout) {
		t.Errorf("attempts %d, requests %d, timeout %v: a cancelled request must not be retried", re.Attempts, n.Load(), errors.Is(err, ErrTimeout))
	}

	// Already cancelled: nothing is sent.
	before := n.Load()
	if _, err := c.Get(ctx, Params{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v", err)
	}
	if n.Load() != before {
		t.Error("a request was sent with a cancelled context")
	}
}

func TestClientConnectionErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now
	c := newTestClient(t, strings.Replace(addr, "http://", "http://u:hunter2@", 1)+"/api/", fast(2))
	_, err := c.Get(t.Context(), Params{Results: 3, Password: "special,10"})
	if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "special")) {
		t.Errorf("secret leaked in %q", err)
	}
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RequestError", err)
	}
	if re.Status != 0 || re.Attempts != 3 {
		t.Errorf("status %d attempts %d, want 0 and 3", re.Status, re.Attempts)
	}
	want := "randomuser: GET " + strings.Replace(addr, "http://", "http://u:xxxxx@", 1) + "/api/?password=xxxxx&results=3: after 3 attempts: send request: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
}

// fakeLimiter records what the client asks of the rate limit.
type fakeLimiter struct {
	mu    sync.Mutex
	asked []int
	burst int
	err   error
}

func (l *fakeLimiter) WaitN(ctx context.Context, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, n)
	return l.err
}

type burstLimiter struct{ *fakeLimiter }

func (l burstLimiter) Burst() int { return l.burst }

func TestClientRateLimitTakesUsers(t *testing.T) {
	tests := []struct {
		name    string
		results int
		burst   int
		steps   []http.HandlerFunc
		want    []int
	}{
		{"results taken", 5000, 0, nil, []int{5000}},
		{"zero results count as one", 0, 0, nil, []int{1}},
		{"out of range counts as one", 5001, 0, nil, []int{1}},
		{"every attempt takes", 40, 0, []http.HandlerFunc{status(503, ""), status(500, "")}, []int{40, 40, 40}},
		{"split by burst", 5000, 2000, nil, []int{2000, 2000, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := scripted(t, append(tt.steps, status(200, okBody))...)
			fl := &fakeLimiter{burst: tt.burst}
			var l Limiter = fl
			if tt.burst > 0 {
				l = burstLimiter{fl}
			}
			c := newTestClient(t, srv.URL+"/api/", fast(3), WithLimiter(l))
			if _, err := c.Get(t.Context(), Params{Results: tt.results}); err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !slices.Equal(fl.asked, tt.want) {
				t.Errorf("limiter asked for %v, want %v", fl.asked, tt.want)
			}
		})
	}
}

func TestClientRateLimitRefusal(t *testing.T) {
	srv, n := scripted(t, status(200, okBody))
	fl := &fakeLimiter{err: errors.New("rate: Wait(n=10) would exceed context deadline")}
	c := newTestClient(t, srv.URL+"/api/", WithLimiter(fl))
	_, err := c.Get(t.Context(), Params{Results: 10})
	var re *RequestError
	if !errors.Is(err, ErrRateLimit) || !errors.As(err, &re) || re.Attempts != 0 || n.Load() != 0 {
		t.Fatalf("err = %v (requests %d), want ErrRateLimit before any request", err, n.Load())
	}
	if !strings.Contains(err.Error(), "waiting for 10 users") {
		t.Errorf("message %q", err)
	}
}

// TestClientRateLimitReal uses the real token bucket: 10 users an hour
// grant 5 at once, so a second request for 5 cannot be served within a
// short deadline and fails without reaching the server.
func TestClientRateLimitReal(t *testing.T) {
	srv, n := scripted(t, status(200, okBody))
	c := newTestClient(t, srv.URL+"/api/", WithRateLimit(10, time.Hour))
	if _, err := c.Get(t.Context(), Params{Results: 5}); err != nil {
		t.Fatalf("first Get within the burst: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := c.Get(ctx, Params{Results: 5})
	if !errors.Is(err, ErrRateLimit) {
		t.Fatalf("second Get = %v, want ErrRateLimit", err)
	}
	if n.Load() != 1 {
		t.Errorf("server saw %d requests, want 1", n.Load())
	}
}

func TestClientDefaultRateLimit(t *testing.T) {
	tests := []struct {
		base string
		opts []ClientOption
		want bool
	}{
		{"https://randomuser.me/api/", nil, true},
		{"", nil, true},
		{"https://RandomUser.me./api/1.4/", nil, true},
		{"https://www.randomuser.me/api/", nil, true},
		{"https://randomuser.me/api/", []ClientOption{WithRateLimit(0, 0)}, false},
		{"https://randomuser.me/api/", []ClientOption{WithLimiter(nil)}, false},
		{"http://127.0.0.1:8088/api/", nil, false},
		{"https://notrandomuser.me/api/", nil, false},
		{"http://127.0.0.1:8088/api/", []ClientOption{WithRateLimit(100, time.Minute)}, true},
	}
	for _, tt := range tests {
		c := newTestClient(t, tt.base, tt.opts...)
		if got := c.limiter != nil; got != tt.want {
			t.Errorf("NewClient(%q, %d options): rate limit on = %v, want %v", tt.base, len(tt.opts), got, tt.want)
		}
	}
}

// TestWindowLimiterHoldsOverEveryWindow drives the default limiter with a
// greedy consumer on a synthetic clock and checks that no window of five
// minutes grants more than 20,000 users.
func TestWindowLimiterHoldsOverEveryWindow(t *testing.T) {
	for _, tc := range []struct {
		users int
		per   time.Duration
	}{{PublicRateLimitUsers, PublicRateLimitPer}, {10, time.Hour}, {1, time.Second}, {3, time.Minute}} {
		lim := newWindowLimiter(tc.users, tc.per)
		t0 := time.Unix(1_000_000, 0)
		step := tc.per / 300
		var grants []int // users granted at each step
		for i := 0; i < 3*300; i++ {
			now := t0.Add(time.Duration(i) * step)
			k := 0
			for lim.AllowN(now, 1) {
				k++
			}
			grants = append(grants, k)
		}
		total := 0
		for i := range grants {
			total += grants[i]
			if i >= 300 {
				total -= grants[i-300]
			}
			if total > tc.users {
				t.Fatalf("%d/%v: %d users granted in the window ending at step %d", tc.users, tc.per, total, i)
			}
		}
		// And the limit is not needlessly low: in the long run it grants
		// at least half the allowance per window.
		if sum := total; sum < tc.users/2 {
			t.Errorf("%d/%v: only %d users in the last window", tc.users, tc.per, sum)
		}
	}
	if l := newWindowLimiter(PublicRateLimitUsers, PublicRateLimitPer); l.Burst() != MaxResults {
		t.Errorf("default burst = %d, want %d so one full request passes at once", l.Burst(), MaxResults)
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		base string
		opts []ClientOption
		want string
	}{
		{"not http", "ftp://example.com/api/", nil, "absolute http"},
		{"relative", "/api/", nil, "absolute http"},
		{"unparsable with password", "http://u:hunter2@[::1/api/", nil, "not a URL"},
		{"negative retries", "", []ClientOption{WithRetries(-1, time.Second, time.Second)}, "negative retry"},
		{"max below base", "", []ClientOption{WithRetries(2, time.Second, time.Millisecond)}, "below base"},
		{"zero base", "", []ClientOption{WithRetries(2, 0, time.Millisecond)}, "zero base"},
		{"negative timeout", "", []ClientOption{WithTimeout(-time.Second)}, "negative timeout"},
		{"zero body cap", "", []ClientOption{WithMaxBodyBytes(0)}, "positive size"},
		{"bad rate", "", []ClientOption{WithRateLimit(-5, time.Minute)}, "positive users"},
		{"nil http client", "", []ClientOption{WithHTTPClient(nil)}, "nil"},
		{"two at once", "", []ClientOption{WithTimeout(-1), WithMaxBodyBytes(-1)}, "positive size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.base, tt.opts...)
			if err == nil {
				t.Fatalf("NewClient = %v, want an error", c)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q, want it to contain %q and no secret", err, tt.want)
			}
		})
	}
}

func TestClientRejectsNonJSONFormat(t *testing.T) {
	srv, n := scripted(t, status(200, "gender,name\n"))
	c := newTestClient(t, srv.URL+"/api/")
	for _, f := range []string{"csv", "yaml", "xml"} {
		if _, err := c.Get(t.Context(), Params{Format: f}); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("format %s: err = %v", f, err)
		}
	}
	if n.Load() != 0 {
		t.Errorf("%d requests sent for formats the client cannot read", n.Load())
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1/", WithRetries(10, 100*time.Millisecond, time.Second))
	for k, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceil *= time.Millisecond
		var seenLow, seenHigh bool
		for range 2000 {
			d := c.backoff(k)
			if d < 0 || d >= ceil {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", k, d, ceil)
			}
			seenLow = seenLow || d < ceil/4
			seenHigh = seenHigh || d > ceil*3/4
		}
		if !seenLow || !seenHigh {
			t.Errorf("backoff(%d) not spread over [0, %v): low %v high %v", k, ceil, seenLow, seenHigh)
		}
	}
	if d := c.backoff(1000); d < 0 || d >= time.Second {
		t.Errorf("backoff(1000) = %v, want capped below 1s", d)
	}
}

// Compile-time check: *rate.Limiter is a Limiter with a burst.
var _ interface {
	Limiter
	Burst() int
} = (*rate.Limiter)(nil)
