package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/redact"
)

// Client calls the REST API: of a running scheduler (NewClient), or of a
// metadata store in this process (LocalClient), so that the CLI reads and
// prints the same thing either way.
type Client struct {
	base   string
	user   string
	pass   string
	token  string
	http   *http.Client
	target string // for messages: the URL, or "the metadata store"
}

// NewClient returns a client of the API at base (http://host:port), with
// basic auth (user, password) or a bearer token. Requests time out after
// 30 s.
func NewClient(base, user, password, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the API URL must be http(s)://host:port")
	}
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
		u.User = nil
	}
	base = strings.TrimRight(u.String(), "/")
	return &Client{base: base, user: user, pass: password, token: token, http: &http.Client{Timeout: 30 * time.Second}, target: redact.URL(base)}, nil
}

// LocalClient returns a client that calls a in this process, as the admin,
// without a login: whoever can open the metadata store may change it.
func LocalClient(a *API) *Client {
	return &Client{base: "http://metadata-store", http: &http.Client{Transport: localTransport{a.trusted()}}, target: "the metadata store"}
}

type localTransport struct{ h http.Handler }

func (t localTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &responseRecorder{header: http.Header{}, code: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	return &http.Response{StatusCode: rec.code, Header: rec.header, Body: io.NopCloser(&rec.body), Request: r}, nil
}

type responseRecorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
	wrote  bool
}

func (r *responseRecorder) Header() http.Header { return r.header }
func (r *responseRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *responseRecorder) Write(b []byte) (int, error) { r.wrote = true; return r.body.Write(b) }

// Error is an error answer of the API, with Airflow's problem fields.
type Error struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Title, e.Status, e.Detail)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Title, e.Status)
}

// Do sends a call and decodes its JSON answer into out (when not nil); an
// error answer is an *Error. It returns the raw answer as well.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the scheduler's API at %s: %w", c.target, redact.Error(err, c.base))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		_ = json.Unmarshal(raw, e)
		return raw, e
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("the API at %s answered what is not JSON of this call: %w", c.target, err)
		}
	}
	return raw, nil
}

// DAG, DAGRun and TaskInstance are the API's objects, as far as the CLI
// shows them.
type (
	DAG struct {
		DagID            string          `json:"dag_id"`
		IsPaused         bool            `json:"is_paused"`
		Owners           []string        `json:"owners"`
		Description      string          `json:"description"`
		ScheduleInterval json.RawMessage `json:"schedule_interval"`
		Timetable        string          `json:"timetable_description"`
		NextDagrun       *string         `json:"next_dagrun"`
	}
	DAGRun struct {
		DagRunID    string         `json:"dag_run_id"`
		DagID       string         `json:"dag_id"`
		LogicalDate *string        `json:"logical_date"`
		StartDate   *string        `json:"start_date"`
		EndDate     *string        `json:"end_date"`
		RunType     string         `json:"run_type"`
		State       string         `json:"state"`
		Conf        map[string]any `json:"conf"`
	}
	TaskInstance struct {
		TaskID    string   `json:"task_id"`
		State     *string  `json:"state"`
		TryNumber int      `json:"try_number"`
		MaxTries  int      `json:"max_tries"`
		Duration  *float64 `json:"duration"`
		Hostname  *string  `json:"hostname"`
		Note      *string  `json:"note"`
	}
)

// PathEscape escapes one path segment (run ids hold ':' and '+').
func PathEscape(s string) string { return url.PathEscape(s) }
