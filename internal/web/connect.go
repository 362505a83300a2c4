package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/redact"
)

// Connect reads and drives a Kafka Connect worker through its REST API over
// HTTP: ours (userstream connect, dev's) or a JVM worker. Calls carry the
// logged-in user's bearer token, so the worker decides with its own logins;
// a user:password in the URL is sent as basic auth instead (a JVM worker's
// BasicAuthSecurityRestExtension) and is never shown.
type Connect struct {
	base    string        // scheme://host[:port][/prefix]: no user info, no trailing slash
	user    *url.Userinfo // the URL's, or nil
	http    *http.Client
	timeout time.Duration // of each call
}

// NewConnect returns a client of the Connect REST API at baseURL, an
// http(s) URL such as http://127.0.0.1:8083. Its errors never repeat the
// URL (which may hold a password).
func NewConnect(baseURL string) (*Connect, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want an http(s) URL of a Kafka Connect REST API, such as http://127.0.0.1:8083")
	}
	user := u.User
	u.User = nil
	dialer := &net.Dialer{Timeout: 3 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy, tr.DialContext = nil, dialer.DialContext
	return &Connect{base: strings.TrimSuffix(u.String(), "/"), user: user, http: &http.Client{Transport: tr}, timeout: 10 * time.Second}, nil
}

// URL is the worker's URL as the UI shows it: without its user info.
func (c *Connect) URL() string { return c.base }

// ConnectError is a call Kafka Connect answered with an error: the HTTP
// status and the message of its {"error_code": .., "message": ..} body.
type ConnectError struct {
	Status  int
	Message string
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("Kafka Connect refused (%d): %s", e.Status, e.Message)
}

// connectDown is a call that got no answer.
type connectDown struct {
	url string
	err error
}

func (e *connectDown) Error() string {
	return fmt.Sprintf("Kafka Connect at %s is unreachable: %v", e.url, e.err)
}

func (e *connectDown) Unwrap() error { return e.err }

// connectStatusOf is the status a page answers for a failed Connect call:
// Connect's own for a refusal about the request (4xx), else 502.
func connectStatusOf(err error) int {
	var ce *ConnectError
	if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
		return ce.Status
	}
	return http.StatusBadGateway
}

// call does one REST call (path already escaped) and decodes a JSON answer
// into out, when given. auth is the Authorization header to send.
func (c *Connect) call(ctx context.Context, auth, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return &connectDown{url: c.base, err: err}
	}
	req.Header.Set("Accept", "application/json")
	if c.user != nil {
		pw, _ := c.user.Password()
		req.SetBasicAuth(c.user.Username(), pw)
	} else if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the method and URL again
		}
		return &connectDown{url: c.base, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &connectDown{url: c.base, err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			msg = e.Message
		} else if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &ConnectError{Status: resp.StatusCode, Message: msg}
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("Kafka Connect at %s answered %s %s with what is not its JSON: %v", c.base, method, strings.SplitN(path, "?", 2)[0], err)
		}
	}
	return nil
}

// connectorPath is Connect's path of a connector, its name escaped.
func connectorPath(name string) string { return "/connectors/" + pathEscape(name) }

// The REST API's shapes, as far as the pages read them.
type (
	connectState struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace,omitempty"`
	}
	connectTask struct {
		ID int `json:"id"`
		connectState
	}
	connectStatus struct {
		Connector connectState  `json:"connector"`
		Tasks     []connectTask `json:"tasks"`
		Type      string        `json:"type"`
	}
	connectInfo struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
		Type   string            `json:"type"`
	}
)

// connectorRow is one connector of the list, and the head of its page.
type connectorRow struct {
	Name         string   `json:"name"`
	Class        string   `json:"class"`
	Plugin       string   `json:"plugin"` // the class's simple name
	Type         string   `json:"type"`
	State        string   `json:"state"`
	WorkerID     string   `json:"worker_id"`
	Trace        string   `json:"trace,omitempty"`
	TasksRunning int      `json:"tasks_running"`
	TasksTotal   int      `json:"tasks_total"`
	Topics       []string `json:"topics"`
	TopicsRegex  string   `json:"topics_regex,omitempty"`
}

func newConnectorRow(name string, info connectInfo, st connectStatus) connectorRow {
	class := info.Config["connector.class"]
	row := connectorRow{Name: name, Class: class, Plugin: class[strings.LastIndex(class, ".")+1:], Type: cmp.Or(st.Type, info.Type),
		State: st.Connector.State, WorkerID: st.Connector.WorkerID, Trace: st.Connector.Trace, TasksTotal: len(st.Tasks),
		Topics: []string{}, TopicsRegex: info.Config["topics.regex"]}
	for _, t := range st.Tasks {
		if t.State == "RUNNING" {
			row.TasksRunning++
		}
	}
	for t := range strings.SplitSeq(info.Config["topics"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			row.Topics = append(row.Topics, t)
		}
	}
	return row
}

type connectPage struct {
	URL        string         `json:"connect_url"`
	Connectors []connectorRow `json:"connectors"`
	Error      string         `json:"error,omitempty"`
}

var errConnectOff = errors.New("Kafka Connect is not connected to this UI: start userstream web with --connect-url URL")

// connectAuth is the Authorization header that carries the request's
// login to Connect: a bearer token of the metadata store's user.
func (s *Server) connectAuth(r *http.Request) string {
	se := sessionOf(r)
	if se == nil || se.User.Name == "" {
		return ""
	}
	tok, err := s.cfg.Auth.Token(r.Context(), se.User)
	if err != nil { // Connect then answers 401, and the log says why
		s.log.Error("web: a token for Kafka Connect", "err", err)
		return ""
	}
	return "Bearer " + tok
}

func (s *Server) loadConnect(r *http.Request) (any, int, error) {
	c := s.cfg.Connect
	if c == nil {
		return nil, http.StatusNotFound, errConnectOff
	}
	p := connectPage{URL: c.URL(), Connectors: []connectorRow{}}
	var all map[string]struct {
		Status connectStatus `json:"status"`
		Info   connectInfo   `json:"info"`
	}
	if err := c.call(r.Context(), s.connectAuth(r), http.MethodGet, "/connectors?expand=status&expand=info", &all); err != nil {
		// The page still renders: it says what is wrong, and where.
		p.Error = err.Error()
		return p, http.StatusBadGateway, nil
	}
	for name, e := range all {
		p.Connectors = append(p.Connectors, newConnectorRow(name, e.Info, e.Status))
	}
	slices.SortFunc(p.Connectors, func(a, b connectorRow) int { return strings.Compare(a.Name, b.Name) })
	return p, 0, nil
}

type configEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type connectOffset struct {
	Topic     string `json:"topic,omitempty"`
	Partition int64  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Source is a source connector's partition and offset, as JSON.
	Source string `json:"source,omitempty"`
}

type connectorPage struct {
	connectorRow
	URL          string          `json:"connect_url"`
	Tasks        []connectTask   `json:"tasks"`
	Config       []configEntry   `json:"config"`
	Active       []string        `json:"active_topics"`
	Offsets      []connectOffset `json:"offsets"`
	OffsetsError string          `json:"offsets_error,omitempty"`
	Error        string          `json:"error,omitempty"` // an action Connect refused
	Charts       *chartSet       `json:"-"`               // its consumer group's lag
}

// connector gathers a connector's page: info, status, topics and offsets.
func (s *Server) connector(r *http.Request) (connectorPage, int, error) {
	c := s.cfg.Connect
	name := r.PathValue("name")
	p := connectorPage{connectorRow: connectorRow{Name: name}}
	if c == nil {
		return p, http.StatusNotFound, errConnectOff
	}
	p.URL = c.URL()
	ctx, auth, base := r.Context(), s.connectAuth(r), connectorPath(name)
	var info connectInfo
	if err := c.call(ctx, auth, http.MethodGet, base, &info); err != nil {
		return p, connectStatusOf(err), fmt.Errorf("connector %s: %w", name, err)
	}
	var st connectStatus
	if err := c.call(ctx, auth, http.MethodGet, base+"/status", &st); err != nil {
		return p, connectStatusOf(err), fmt.Errorf("connector %s: %w", name, err)
	}
	p.connectorRow, p.Tasks = newConnectorRow(name, info, st), st.Tasks
	if p.Type == "sink" {
		p.Charts = s.groupCharts(connect.GroupOf(name))
	}
	if p.Tasks == nil {
		p.Tasks = []connectTask{}
	}
	for k, v := range info.Config {
		p.Config = append(p.Config, configEntry{Key: k, Value: redact.Value(k, v)})
	}
	slices.SortFunc(p.Config, func(a, b configEntry) int { return strings.Compare(a.Key, b.Key) })
	// Topics and offsets are newer calls (Connect 2.5 and 3.5): a worker
	// without them still shows the rest.
	var active map[string]struct {
		Topics []string `json:"topics"`
	}
	p.Active = []string{}
	if err := c.call(ctx, auth, http.MethodGet, base+"/topics", &active); err == nil {
		p.Active = append(p.Active, active[name].Topics...)
	}
	var offs struct {
		Offsets []struct {
			Partition map[string]any `json:"partition"`
			Offset    map[string]any `json:"offset"`
		} `json:"offsets"`
	}
	p.Offsets = []connectOffset{}
	if err := c.call(ctx, auth, http.MethodGet, base+"/offsets", &offs); err != nil {
		p.OffsetsError = err.Error()
	}
	for _, o := range offs.Offsets {
		topic, isSink := o.Partition["kafka_topic"].(string)
		part, _ := o.Partition["kafka_partition"].(float64)
		off, _ := o.Offset["kafka_offset"].(float64)
		if isSink {
			p.Offsets = append(p.Offsets, connectOffset{Topic: topic, Partition: int64(part), Offset: int64(off)})
			continue
		}
		src, _ := json.Marshal(o)
		p.Offsets = append(p.Offsets, connectOffset{Source: string(src)})
	}
	slices.SortFunc(p.Offsets, func(a, b connectOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return p, 0, nil
}

func (s *Server) loadConnector(r *http.Request) (any, int, error) { return s.connector(r) }

// connectOp is one action of the connector page.
type connectOp struct {
	method, path string // path: after /connectors/{name}
	want         string // the connector state to wait for
	confirm      bool   // needs the confirmation box ticked
	done         string // the flash: "NAME done"
}

var connectOps = map[string]connectOp{
	"pause":         {method: http.MethodPut, path: "/pause", want: "PAUSED", done: "paused"},
	"resume":        {method: http.MethodPut, path: "/resume", want: "RUNNING", done: "resumed"},
	"stop":          {method: http.MethodPut, path: "/stop", want: "STOPPED", done: "stopped"},
	"restart":       {method: http.MethodPost, path: "/restart?includeTasks=true&onlyFailed=true", done: "restarted: its failed tasks start again"},
	"delete":        {method: http.MethodDelete, confirm: true, done: "deleted"},
	"reset-offsets": {method: http.MethodDelete, path: "/offsets", confirm: true, done: "reset: its committed offsets are gone"},
}

// connectAction is a connector page's form: it asks Connect, then goes back
// to the page (the list after a delete), or shows Connect's refusal.
func (s *Server) connectAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	op, ok := connectOps[r.PathValue("action")]
	if r.PathValue("id") != "" { // a task's restart
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 0 {
			http.Error(w, fmt.Sprintf("task %q is not a task id", r.PathValue("id")), http.StatusBadRequest)
			return
		}
		op, ok = connectOp{method: http.MethodPost, path: "/tasks/" + strconv.Itoa(id) + "/restart", done: "task " + strconv.Itoa(id) + " restarted"}, true
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	c := s.cfg.Connect
	if c == nil {
		http.Error(w, errConnectOff.Error(), http.StatusNotFound)
		return
	}
	if op.confirm && r.PostFormValue("confirm") != "yes" {
		s.connectRefused(w, r, http.StatusBadRequest, "tick the confirmation box first: nothing was changed")
		return
	}
	auth := s.connectAuth(r)
	if err := c.call(r.Context(), auth, op.method, connectorPath(name)+op.path, nil); err != nil {
		s.connectRefused(w, r, connectStatusOf(err), err.Error())
		return
	}
	if r.PathValue("action") == "delete" {
		back(w, r, "/connect", name+" "+op.done)
		return
	}
	flash := name + " " + op.done
	if op.want != "" && !s.awaitState(r.Context(), auth, name, op.want) {
		flash = name + ": asked to be " + op.done + "; Kafka Connect does not say so yet"
	}
	back(w, r, "/connect/"+pathEscape(name), flash)
}

// awaitState waits a little for a connector to reach a state (a JVM worker
// applies a change through its config topic), so the page shows it.
func (s *Server) awaitState(ctx context.Context, auth, name, want string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st connectStatus
		err := s.cfg.Connect.call(ctx, auth, http.MethodGet, connectorPath(name)+"/status", &st)
		if err == nil && st.Connector.State == want {
			return true
		}
		if err != nil || time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connectRefused shows the connector's page with why an action failed, or
// the error page when the connector cannot be read either.
func (s *Server) connectRefused(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p, _, err := s.connector(r)
	if err != nil {
		s.render(w, r, status, "error", "Connector", map[string]any{"Status": status, "Message": msg})
		return
	}
	p.Error = msg
	s.render(w, r, status, "connector", "Connector", p)
}
