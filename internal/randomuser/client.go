package randomuser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/redact"
	"golang.org/x/time/rate"
)

// DefaultBaseURL is the public service's endpoint, used when NewClient is
// given an empty base URL.
const DefaultBaseURL = "https://randomuser.me/api/"

// Defaults of a Client built without options.
const (
	// DefaultTimeout bounds one attempt: connecting, sending, and reading
	// the whole body.
	DefaultTimeout = 10 * time.Second
	// DefaultRetries is how many times a failed attempt is retried, so a
	// request makes at most DefaultRetries+1 attempts.
	DefaultRetries = 3
	// DefaultBaseBackoff is the backoff before the first retry; it doubles
	// with each retry, up to DefaultMaxBackoff, and is fully jittered.
	DefaultBaseBackoff = 250 * time.Millisecond
	// DefaultMaxBackoff caps the backoff between two attempts (not a wait
	// the server asks for with Retry-After).
	DefaultMaxBackoff = 10 * time.Second
	// DefaultMaxBodyBytes caps a response body. 5000 users, the most one
	// request can ask for, take about 6 MiB of JSON.
	DefaultMaxBodyBytes = 64 << 20
	// PublicRateLimitUsers and PublicRateLimitPer are randomuser.me's
	// public limit, applied by default when the base URL's host is
	// randomuser.me.
	PublicRateLimitUsers = 20000
	PublicRateLimitPer   = 5 * time.Minute
	// MaxResults is the most users the API gives in one response.
	MaxResults = 5000
)

var (
	// ErrBodyTooLarge is matched by a *RequestError whose response body was
	// longer than the client's limit (WithMaxBodyBytes). It is not retried:
	// ask for fewer results or raise the limit.
	ErrBodyTooLarge = errors.New("response body larger than the limit")
	// ErrRateLimit is matched by a *RequestError when the client-side rate
	// limit could not grant the request's users before the context ended.
	ErrRateLimit = errors.New("client-side rate limit")
	// ErrTimeout is matched by a *RequestError whose last attempt got no
	// complete response within the per-request timeout (WithTimeout).
	ErrTimeout = errors.New("no complete response within the request timeout")
)

// RequestError is the error of a failed Get: which request, the last HTTP
// status seen, how many attempts were made, and the last failure. Its URL
// never carries secrets: userinfo is removed and password-like query values
// are replaced by "xxxxx".
type RequestError struct {
	// Method is the HTTP method, GET.
	Method string
	// URL is the request URL without secrets.
	URL string
	// Status is the HTTP status of the last attempt, 0 if it got none
	// (connection error, timeout, cancelled, rate limit).
	Status int
	// Attempts is the number of HTTP requests sent.
	Attempts int
	// Err is the last attempt's failure: an *APIError, a *DecodeError,
	// ErrBodyTooLarge, ErrTimeout, ErrRateLimit, a context error, a
	// connection error or a status error, wrapped.
	Err error
}

// Error returns, for example,
// "randomuser: GET http://127.0.0.1:8088/api/?results=5: HTTP 503 after 4 attempts: 503 Service Unavailable: ...".
func (e *RequestError) Error() string {
	var b strings.Builder
	b.WriteString("randomuser: ")
	b.WriteString(e.Method)
	b.WriteString(" ")
	b.WriteString(e.URL)
	b.WriteString(": ")
	if e.Status != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(" ")
	}
	b.WriteString("after ")
	b.WriteString(strconv.Itoa(e.Attempts))
	if e.Attempts == 1 {
		b.WriteString(" attempt")
	} else {
		b.WriteString(" attempts")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the last attempt's failure.
func (e *RequestError) Unwrap() error { return e.Err }

// Limiter is a client-side rate limit counted in users: WaitN blocks until
// n users may be fetched, or returns an error when ctx ends first (or can
// not wait long enough). *rate.Limiter satisfies it. If the Limiter also has
// a Burst() int method, the client never asks it for more than Burst() at
// once, splitting a large request into several waits.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// ClientOption configures a Client in NewClient.
type ClientOption func(*clientConfig)

type clientConfig struct {
	httpClient  *http.Client
	timeout     time.Duration
	retries     int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	limiter     Limiter
	limiterSet  bool
	maxBody     int64
	userAgent   string
	logger      *slog.Logger
	errs        []error
}

// WithHTTPClient sends requests with hc instead of a default *http.Client.
// A Timeout set on hc applies on top of the per-request timeout.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *clientConfig) {
		if hc == nil {
			c.errs = append(c.errs, errors.New("WithHTTPClient: nil *http.Client"))
			return
		}
		c.httpClient = hc
	}
}

// WithTimeout bounds each attempt (connect, send, read the whole body) to d;
// the default is DefaultTimeout. Zero means no per-attempt bound (the
// context still applies); a negative d is an error.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithTimeout(%v): negative timeout", d))
			return
		}
		c.timeout = d
	}
}

// WithRetries sets how often a failed attempt is retried (max retries, so
// at most max+1 attempts; 0 disables retries) and the backoff: before retry
// k (0-based) the client sleeps a uniformly random duration in
// [0, min(maxBackoff, base*2^k)) ("full jitter"), unless the server asked
// for a wait with Retry-After. Negative values, a zero base with max > 0,
// and maxBackoff < base are errors.
func WithRetries(max int, base, maxBackoff time.Duration) ClientOption {
	return func(c *clientConfig) {
		switch {
		case max < 0:
			c.errs = append(c.errs, fmt.Errorf("WithRetries: negative retry count %d", max))
		case base < 0 || maxBackoff < 0:
			c.errs = append(c.errs, fmt.Errorf("WithRetries: negative backoff %v or %v", base, maxBackoff))
		case max > 0 && base == 0:
			c.errs = append(c.errs, errors.New("WithRetries: zero base backoff; use at least 1ns"))
		case maxBackoff < base:
			c.errs = append(c.errs, fmt.Errorf("WithRetries: max backoff %v below base %v", maxBackoff, base))
		default:
			c.retries, c.baseBackoff, c.maxBackoff = max, base, maxBackoff
		}
	}
}

// WithRateLimit limits the users fetched (the results of each request, one
// when results is outside 1..5000) to users per period per, for this
// client. The limit holds over every window of length per: a token bucket
// with a burst of min(users/2, 5000) refills at (users-burst)/per, so even a
// client that starts with a full bucket stays within users per window.
// Retried attempts take users again, as the server may count them.
//
// A limit is on by default, at PublicRateLimitUsers per PublicRateLimitPer,
// when the base URL's host is randomuser.me, and off otherwise.
// WithRateLimit(0, 0) turns it off.
func WithRateLimit(users int, per time.Duration) ClientOption {
	return func(c *clientConfig) {
		switch {
		case users == 0 && per == 0:
			c.limiter, c.limiterSet = nil, true
		case users <= 0 || per <= 0:
			c.errs = append(c.errs, fmt.Errorf("WithRateLimit(%d, %v): want positive users and period, or (0, 0) to turn it off", users, per))
		default:
			c.limiter, c.limiterSet = newWindowLimiter(users, per), true
		}
	}
}

// WithLimiter uses l as the client-side rate limit, for example one
// *rate.Limiter shared by several clients; nil turns the limit off. It
// replaces WithRateLimit and the default.
func WithLimiter(l Limiter) ClientOption {
	return func(c *clientConfig) { c.limiter, c.limiterSet = l, true }
}

// WithMaxBodyBytes caps a response body at n bytes (default
// DefaultMaxBodyBytes). A longer body fails the request with
// ErrBodyTooLarge and is not retried. n must be positive.
func WithMaxBodyBytes(n int64) ClientOption {
	return func(c *clientConfig) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBodyBytes(%d): want a positive size", n))
			return
		}
		c.maxBody = n
	}
}

// WithUserAgent sets the User-Agent header (default "userstream-randomuser/1.4").
func WithUserAgent(ua string) ClientOption {
	return func(c *clientConfig) { c.userAgent = ua }
}

// WithLogger logs retries (Warn) and attempts (Debug) to l; nil, the
// default, logs nothing. URLs in logs carry no secrets.
func WithLogger(l *slog.Logger) ClientOption {
	return func(c *clientConfig) { c.logger = l }
}

// Client fetches users from the Random User API v1.4 at one base URL, such
// as randomuser.me or `userstream api`. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	cfg       clientConfig
	logger    *slog.Logger
	limiter   Limiter
	burst     int
	userAgent string
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a client for the API at baseURL, for example
// "https://randomuser.me/api/" or "http://127.0.0.1:8088/api/1.4/"; an
// empty baseURL means DefaultBaseURL. Query parameters in baseURL are sent
// with every request, overridden by Params. It is an error if baseURL is
// not an absolute http(s) URL or an option is invalid.
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		// url.Parse's error quotes the URL; it may hold a password.
		return nil, errors.New("randomuser: base URL is not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("randomuser: base URL %s: want an absolute http:// or https:// URL", redact.URL(u.String()))
	}
	cfg := clientConfig{
		timeout:     DefaultTimeout,
		retries:     DefaultRetries,
		baseBackoff: DefaultBaseBackoff,
		maxBackoff:  DefaultMaxBackoff,
		maxBody:     DefaultMaxBodyBytes,
		userAgent:   "userstream-randomuser/" + Version,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("randomuser: new client: %w", err)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{}
	}
	if !cfg.limiterSet && isPublicHost(u.Hostname()) {
		cfg.limiter = newWindowLimiter(PublicRateLimitUsers, PublicRateLimitPer)
	}
	c := &Client{
		base:      u,
		cfg:       cfg,
		logger:    cfg.logger,
		limiter:   cfg.limiter,
		userAgent: cfg.userAgent,
		sleep:     sleepCtx,
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if b, ok := c.limiter.(interface{ Burst() int }); ok {
		c.burst = b.Burst()
	}
	return c, nil
}

// isPublicHost reports whether host is the public service.
func isPublicHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "randomuser.me" || strings.HasSuffix(host, ".randomuser.me")
}

// newWindowLimiter returns a token bucket that never grants more than users
// in any window of length per (see WithRateLimit).
func newWindowLimiter(users int, per time.Duration) *rate.Limiter {
	burst := min(users/2, MaxResults)
	if burst < 1 {
		burst = 1
	}
	refill := users - burst
	if refill < 1 {
		refill = 1
	}
	return rate.NewLimiter(rate.Limit(float64(refill)/per.Seconds()), burst)
}

// URL returns the URL Get would request for p, without secrets.
func (c *Client) URL(p Params) string { return redact.URL(c.requestURL(p).String()) }

func (c *Client) requestURL(p Params) *url.URL {
	u := *c.base
	u.User = c.base.User
	q := c.base.Query()
	for k, v := range p.Values() {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return &u
}

// attempt is the outcome of one HTTP exchange.
type attempt struct {
	status     int
	err        error
	retry      bool
	retryAfter time.Duration // < 0: the server gave none
}

// Get fetches one response for p, retrying failed attempts as configured:
// 5xx (but 501 and 505), 408, 429, timeouts, connection errors and
// malformed bodies are retried; other 4xx, an API error in a 2xx body and
// ErrBodyTooLarge are not. On 429 and 503 the client waits as long as
// Retry-After says (seconds or an HTTP date), else it backs off. Every wait
// (rate limit, backoff, Retry-After) ends when ctx does.
//
// Get fails with a *RequestError naming the URL (without secrets), the last
// status and the number of attempts. p.Format must be "", "json" or
// "pretty": the client decodes JSON only.
func (c *Client) Get(ctx context.Context, p Params) (Response, error) {
	switch p.Format {
	case "", "json", "pretty":
	default:
		return Response{}, fmt.Errorf("randomuser: format %q: the client reads JSON only; use json or pretty", p.Format)
	}
	u := c.requestURL(p)
	safe := redact.URL(u.String())
	users := p.Results
	if users < 1 || users > MaxResults {
		users = 1
	}
	fail := func(a attempt, n int) (Response, error) {
		return Response{}, &RequestError{Method: http.MethodGet, URL: safe, Status: a.status, Attempts: n, Err: a.err}
	}
	var last attempt
	for n := 0; ; {
		if err := c.wait(ctx, users); err != nil {
			if last.err != nil {
				err = fmt.Errorf("%w (before retrying after: %v)", err, last.err)
			}
			last.err = err
			return fail(last, n)
		}
		n++
		c.logger.DebugContext(ctx, "randomuser: GET", "url", safe, "attempt", n)
		resp, a := c.do(ctx, u)
		if a.err == nil {
			return resp, nil
		}
		last = a
		if ctx.Err() != nil || !a.retry || n > c.cfg.retries {
			return fail(last, n)
		}
		d := a.retryAfter
		if d < 0 {
			d = c.backoff(n - 1)
		}
		c.logger.WarnContext(ctx, "randomuser: retrying", "url", safe, "attempt", n, "status", a.status, "err", a.err, "wait", d)
		if err := c.sleep(ctx, d); err != nil {
			last.err = fmt.Errorf("%w (while waiting %v to retry after: %v)", err, d, a.err)
			return fail(last, n)
		}
	}
}

// wait takes n users from the rate limit, in pieces no larger than its
// burst.
func (c *Client) wait(ctx context.Context, n int) error {
	if c.limiter == nil {
		return nil
	}
	for left := n; left > 0; {
		take := left
		if c.burst > 0 && take > c.burst {
			take = c.burst
		}
		if err := c.limiter.WaitN(ctx, take); err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				return fmt.Errorf("%w: waiting for %d users: %w (%v)", ErrRateLimit, n, cerr, err)
			}
			return fmt.Errorf("%w: waiting for %d users: %w", ErrRateLimit, n, err)
		}
		left -= take
	}
	return nil
}

// backoff returns the full-jitter wait before retry k (0-based).
func (c *Client) backoff(k int) time.Duration {
	d := c.cfg.maxBackoff
	if k < 62 {
		if b := c.cfg.baseBackoff << k; b > 0 && b < d {
			d = b
		}
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// do makes one attempt.
func (c *Client) do(ctx context.Context, u *url.URL) (Response, attempt) {
	actx := ctx
	if c.cfg.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.cfg.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Response{}, attempt{err: fmt.Errorf("build request: %w", unwrapURLError(err)), retryAfter: -1}
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		return Response{}, c.transportFailure(ctx, actx, "send request", err, 0)
	}
	defer resp.Body.Close()
	a := attempt{status: resp.StatusCode, retryAfter: -1}
	if resp.ContentLength > c.cfg.maxBody {
		a.err = fmt.Errorf("%w: Content-Length %d > %d bytes", ErrBodyTooLarge, resp.ContentLength, c.cfg.maxBody)
		return Response{}, a
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.maxBody+1))
	if err != nil {
		return Response{}, c.transportFailure(ctx, actx, "read body", err, resp.StatusCode)
	}
	if int64(len(body)) > c.cfg.maxBody {
		a.err = fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, c.cfg.maxBody)
		return Response{}, a
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.err = statusError(resp, body)
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			a.retry = true
			a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		case code == http.StatusRequestTimeout:
			a.retry = true
		case code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported:
			a.retry = true
		}
		return Response{}, a
	}
	r, err := decode(body)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			apiErr.StatusCode = resp.StatusCode
		}
		a.err = err
		a.retry = errors.Is(err, ErrMalformed)
		return Response{}, a
	}
	return r, attempt{}
}

// transportFailure classifies an error from sending or reading: the
// caller's context ending is final, the attempt's timeout and connection
// errors are retried.
func (c *Client) transportFailure(ctx, actx context.Context, what string, err error, status int) attempt {
	err = unwrapURLError(err)
	a := attempt{status: status, retryAfter: -1}
	switch {
	case ctx.Err() != nil:
		a.err = fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case errors.Is(actx.Err(), context.DeadlineExceeded) || isTimeout(err):
		a.err = fmt.Errorf("%s: %w (%v): %v", what, ErrTimeout, c.cfg.timeout, err)
		a.retry = true
	default:
		a.err = fmt.Errorf("%s: %w", what, err)
		a.retry = true
	}
	return a
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops the *url.Error wrapper http.Client adds: its message
// repeats the URL, query secrets included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError describes a non-2xx response: the API's own message when the
// body is {"error": "..."}, else the status and the start of the body.
func statusError(resp *http.Response, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	if snippet == "" {
		return fmt.Errorf("unexpected status %s", resp.Status)
	}
	return fmt.Errorf("unexpected status %s: %q", resp.Status, snippet)
}

// parseRetryAfter reads a Retry-After header, delay-seconds or an HTTP
// date, relative to now; -1 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return -1
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// sleepCtx waits d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
