// Package web is the pipeline's UI: what Control Center, the Spark master
// page and Airflow's web server show, in one set of pages and their JSON.
//
// Pages are html/template, enhanced with htmx (vendored, embedded) and one
// small script of ours, and readable without JavaScript; every page's data
// has a JSON twin under /api/ui/. The package reads the roles through small
// interfaces of its own (Kafka, Registry, Users, the scheduler's Service)
// and Kafka Connect through its REST API, so each page is tested with the
// real parts; nothing imports it.
//
// Security: a login (package login's users: admin and viewer) with a
// session cookie (HttpOnly, SameSite=Strict, Secure over TLS), a CSRF token
// on every form that changes state, logins rate-limited, a Content-Security-
// Policy without inline script, X-Frame-Options DENY and nosniff, and every
// value escaped by html/template.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Kafka is what the pages read of Kafka and change in it; *broker.Admin
// is one.
type Kafka interface {
	Brokers(ctx context.Context) ([]broker.BrokerSummary, error)
	Topics(ctx context.Context) ([]broker.TopicSummary, error)
	Topic(ctx context.Context, topic string) (broker.TopicDescription, error)
	TopicConfigs(ctx context.Context, topic string) ([]broker.ConfigEntry, error)
	Messages(ctx context.Context, q broker.MessageQuery) ([]broker.Message, error)
	Groups(ctx context.Context) ([]broker.GroupSummary, error)
	Group(ctx context.Context, group string) (broker.GroupDescription, error)
	ResetOffsets(ctx context.Context, group, topic string, to broker.ResetTarget, apply bool) ([]broker.OffsetChange, error)
	Scan(ctx context.Context, q broker.ScanQuery, each func(broker.Message) bool) (broker.ScanProgress, error)
	Produce(ctx context.Context, topic string, key, value []byte) (partition int32, offset int64, err error)
}

// Users is what the Users page and a user's lineage read of the sink.
type Users interface {
	Get(ctx context.Context, id string) (user.Record, error)
	Page(ctx context.Context, q sink.PageQuery) (sink.Page, error)
	Stats(ctx context.Context) (sink.Stats, error)
}

// Config is what the UI is built from. Kafka, Registry, Users, Service and
// Connect may be nil: their pages then say the part is not connected.
type Config struct {
	Kafka    Kafka
	Registry *Registry
	Users    Users
	// Service is the orchestrator (DAG pages); Auth checks logins against
	// its users; API is its REST API, served under /api/v1/.
	Service *scheduler.Service
	Auth    *login.Authenticator
	API     *restapi.API
	// Pipeline feeds the overview (rates, lag, latency, errors).
	Pipeline *Pipeline
	// Series is the pipeline over time (the charts, /api/ui/series); the
	// caller runs it. nil: no charts.
	Series *Series
	// Connect is a Kafka Connect worker's REST API (the Connect pages);
	// nil: no Connect page.
	Connect *Connect
	// Topic, DLQ and Group are the pipeline's names, for the overview.
	Topic, DLQ, Group string
	// Secure marks cookies Secure (serve over TLS).
	Secure bool
	Logger *slog.Logger
}

// Server serves the UI.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *login.Sessions
	log      *slog.Logger
}

// New builds the UI's handler.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auth == nil {
		return nil, errors.New("web: no authenticator: the UI needs logins")
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), sessions: login.NewSessions(), log: cfg.Logger}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// ServeHTTP adds the security headers and serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https://randomuser.me data:; "+
		"style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return d.Round(time.Millisecond).String()
	},
	"join": strings.Join,
	// bytes shows a size in bytes with a binary unit; a negative one is
	// unknown.
	"bytes": func(n int64) string {
		switch {
		case n < 0:
			return "unknown"
		case n < 1024:
			return fmt.Sprintf("%d B", n)
		}
		v, unit := float64(n)/1024, "KiB"
		for _, u := range []string{"MiB", "GiB", "TiB"} {
			if v < 1024 {
				break
			}
			v, unit = v/1024, u
		}
		return fmt.Sprintf("%.1f %s", v, unit)
	},
	"pct": func(a, b int64) string {
		if b <= 0 {
			return "0"
		}
		return fmt.Sprintf("%.0f", 100*float64(a)/float64(b))
	},
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int64) int64 { return a - b },
	"path": func(segs ...string) string {
		var b strings.Builder
		for _, s := range segs {
			b.WriteString("/")
			b.WriteString(pathEscape(s))
		}
		return b.String()
	},
}

func (s *Server) parseTemplates() error {
	base, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html")
	if err != nil {
		return fmt.Errorf("web: base template: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	User    login.User
	CSRF    string
	Flash   string
	Error   string
	Data    any
	Request *http.Request
	Connect bool // the UI has a Connect page
}

// Admin reports whether the login may change things: the pages show their
// actions disabled otherwise.
func (v view) Admin() bool { return v.User.Role == login.RoleAdmin }

// render writes a page; a template error is logged and answered 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	t := s.pages[page]
	if t == nil {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Nav: page, Data: data, Request: r, Flash: r.URL.Query().Get("flash"), Connect: s.cfg.Connect != nil}
	if se := sessionOf(r); se != nil {
		v.User, v.CSRF = se.User, se.CSRF
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "base.html", v); err != nil {
		s.log.Error("web: render", "page", page, "err", err)
		http.Error(w, "the page could not be rendered; see the server's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// writeJSON answers the JSON twin of a page.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// page is a handler that serves a page and its JSON twin from one loader:
// the JSON under /api/ui/..., the page otherwise.
type loader func(r *http.Request) (data any, status int, err error)

func (s *Server) page(name, title string, load loader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, status, err := load(r)
		if status == 0 {
			status = http.StatusOK
		}
		asJSON := isTwin(r.URL.Path)
		if err != nil {
			if status < 400 {
				status = http.StatusInternalServerError
			}
			if status >= 500 {
				s.log.Warn("web: page failed", "page", name, "err", err)
			}
			if asJSON {
				writeJSON(w, status, map[string]any{"error": err.Error(), "status": status})
				return
			}
			s.render(w, r, status, "error", title, map[string]any{"Status": status, "Message": err.Error()})
			return
		}
		if asJSON {
			writeJSON(w, status, data)
			return
		}
		s.render(w, r, status, name, title, data)
	}
}

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	if s.cfg.API != nil {
		for _, p := range restapi.Prefixes {
			s.mux.Handle(p, s.cfg.API)
		}
	}
	get := func(pattern, name, title string, load loader) {
		h := s.page(name, title, load)
		s.mux.Handle("GET "+pattern, s.viewer(h))
		s.mux.Handle("GET /api/ui"+strings.TrimSuffix(pattern, "/{$}"), s.viewer(h))
	}
	get("/{$}", "overview", "Overview", s.loadOverview)
	s.mux.Handle("GET /events", s.viewer(http.HandlerFunc(s.events)))
	s.mux.Handle("GET /api/ui/series", s.viewer(http.HandlerFunc(s.series)))
	get("/topics", "topics", "Topics", s.loadTopics)
	get("/topics/{topic}", "topic", "Topic", s.loadTopic)
	get("/topics/{topic}/messages", "messages", "Messages", s.loadMessages)
	s.mux.Handle("GET /topics/{topic}/export", s.viewer(http.HandlerFunc(s.exportMessages)))
	s.topicToolRoutes()
	get("/groups", "groups", "Consumer groups", s.loadGroups)
	get("/workers", "workers", "Workers", s.loadWorkers)
	get("/groups/{group}", "group", "Consumer group", s.loadGroup)
	s.mux.Handle("POST /groups/{group}/reset", s.admin(http.HandlerFunc(s.resetGroup)))
	get("/schemas", "schemas", "Schemas", s.loadSchemas)
	get("/schemas/{subject}", "schema", "Schema", s.loadSchema)
	s.mux.Handle("POST /schemas/{subject}/check", s.viewerPost(http.HandlerFunc(s.checkSchema)))
	get("/connect", "connect", "Kafka Connect", s.loadConnect)
	get("/connect/{name}", "connector", "Connector", s.loadConnector)
	s.mux.Handle("POST /connect/{name}/{action}", s.admin(http.HandlerFunc(s.connectAction)))
	s.mux.Handle("POST /connect/{name}/tasks/{id}/restart", s.admin(http.HandlerFunc(s.connectAction)))
	get("/dags", "dags", "DAGs", s.loadDAGs)
	get("/dags/{dag}", "dag", "DAG", s.loadDAG)
	get("/dags/{dag}/runs/{run}", "run", "DAG run", s.loadRun)
	get("/dags/{dag}/runs/{run}/tasks/{task}/logs/{try}", "log", "Log", s.loadLog)
	s.mux.Handle("POST /dags/{dag}/pause", s.admin(http.HandlerFunc(s.pauseDAG)))
	s.mux.Handle("POST /dags/{dag}/trigger", s.admin(http.HandlerFunc(s.triggerDAG)))
	s.mux.Handle("POST /dags/{dag}/runs/{run}/clear", s.admin(http.HandlerFunc(s.clearRun)))
	s.mux.Handle("POST /dags/{dag}/runs/{run}/mark", s.admin(http.HandlerFunc(s.markRun)))
	get("/users", "users", "Users", s.loadUsers)
	get("/users/{id}", "lineage", "User", s.loadLineage)
}

// errNotConnected is what a page of a part the UI was started without says.
func errNotConnected(what string) error {
	return fmt.Errorf("%s is not connected to this UI", what)
}

// isTwin reports whether path is a JSON twin: /api/ui (the overview's)
// or under /api/ui/.
func isTwin(path string) bool {
	return path == "/api/ui" || strings.HasPrefix(path, "/api/ui/")
}
