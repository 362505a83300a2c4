// Package restapi serves the orchestrator over HTTP in the shape of
// Airflow's stable REST API v1, so scripts written for Airflow 2 work.
//
// Paths, field names, pagination (limit, offset, total_entries) and the
// error body ({"title","status","detail","type"}) are Airflow's. Every call
// but /api/v1/health needs a login: HTTP basic auth, or a bearer token from
// POST /auth/token; calls that change state need the admin role.
package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
)

// Prefixes are the paths the API serves under, for a mux that serves it
// beside other handlers: Airflow 2's /api/v1/, Airflow 3's /api/v2/, and
// the simple auth manager's /auth/ (POST /auth/token, /auth/token/cli).
var Prefixes = []string{"/api/v1/", "/api/v2/", "/auth/"}

// Options configure the handler.
type Options struct {
	Logger *slog.Logger
	// Heartbeat, when set, says when the scheduler last ran its loop (for
	// /api/v1/health); without it the scheduler is reported unknown.
	Heartbeat func() time.Time
	// MaxPageLimit caps limit= [100, as Airflow's maximum_page_limit].
	MaxPageLimit int
}

// API is the REST API's handler.
type API struct {
	svc  *scheduler.Service
	auth *login.Authenticator
	opts Options
	mux  *http.ServeMux
}

// New returns the REST API over svc, checking logins with auth.
func New(svc *scheduler.Service, auth *login.Authenticator, opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPageLimit <= 0 {
		opts.MaxPageLimit = 100
	}
	a := &API{svc: svc, auth: auth, opts: opts, mux: http.NewServeMux()}
	read, write := a.authed(false), a.authed(true)
	a.mux.HandleFunc("GET /api/v1/health", a.health)
	a.mux.HandleFunc("POST /auth/token", a.token(false))
	a.mux.HandleFunc("POST /auth/token/cli", a.token(true))
	a.mux.HandleFunc("/auth/", func(w http.ResponseWriter, r *http.Request) {
		v2Error(w, http.StatusNotFound, r.Method+" "+r.URL.Path+" is not a path of this API")
	})
	a.mux.Handle("GET /api/v1/dags", read(a.listDAGs))
	a.mux.Handle("GET /api/v1/dags/{dag_id}", read(a.getDAG))
	a.mux.Handle("PATCH /api/v1/dags/{dag_id}", write(a.patchDAG))
	a.mux.Handle("GET /api/v1/dags/{dag_id}/dagRuns", read(a.listRuns))
	a.mux.Handle("POST /api/v1/dags/{dag_id}/dagRuns", write(a.triggerRun))
	a.mux.Handle("POST /api/v1/dags/{dag_id}/backfill", write(a.backfill))
	a.mux.Handle("GET /api/v1/dags/{dag_id}/dagRuns/{run_id}", read(a.getRun))
	a.mux.Handle("PATCH /api/v1/dags/{dag_id}/dagRuns/{run_id}", write(a.patchRun))
	a.mux.Handle("DELETE /api/v1/dags/{dag_id}/dagRuns/{run_id}", write(a.deleteRun))
	a.mux.Handle("POST /api/v1/dags/{dag_id}/dagRuns/{run_id}/clear", write(a.clearRun))
	a.mux.Handle("GET /api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances", read(a.listTIs))
	a.mux.Handle("GET /api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", read(a.getTI))
	a.mux.Handle("GET /api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}", read(a.getLog))
	a.routesV2()
	a.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "Not Found", fmt.Sprintf("%s %s is not a path of this API", r.Method, r.URL.Path))
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Error types, as Airflow's problem bodies link them.
const typeBase = "https://airflow.apache.org/docs/apache-airflow/2.6.3/stable-rest-api-ref.html#section/Errors/"

var problemTypes = map[int]string{
	http.StatusBadRequest: "BadRequest", http.StatusUnauthorized: "Unauthenticated", http.StatusForbidden: "PermissionDenied",
	http.StatusNotFound: "NotFound", http.StatusConflict: "AlreadyExists", http.StatusTooManyRequests: "Unknown",
	http.StatusInternalServerError: "Unknown", http.StatusMethodNotAllowed: "MethodNotAllowed",
}

// problem writes Airflow's error body.
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": detail,
		"type": typeBase + problemTypes[status]})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// fail maps an operation's error to its status.
func (a *API) fail(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, scheduler.ErrNotFound):
		problem(w, http.StatusNotFound, what+" not found", err.Error())
	case errors.Is(err, scheduler.ErrExists):
		problem(w, http.StatusConflict, what+" already exists", err.Error())
	case errors.Is(err, scheduler.ErrInvalid):
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
	default:
		a.opts.Logger.Error("rest api", "what", what, "err", err)
		problem(w, http.StatusInternalServerError, "Internal Server Error", "the metadata store failed; see the server's log")
	}
}

// Authenticate checks a request's basic auth or bearer token, rate
// limited by client address (login.MaxFailures).
func (a *API) Authenticate(r *http.Request) (login.User, int, string) {
	u, err := a.auth.Request(r)
	switch {
	case err == nil:
		return u, 0, ""
	case errors.Is(err, login.ErrNoCredentials):
		return login.User{}, http.StatusUnauthorized, err.Error()
	case errors.Is(err, login.ErrTooManyFailures):
		return login.User{}, http.StatusTooManyRequests, err.Error()
	case errors.Is(err, login.ErrUnauthorized):
		return login.User{}, http.StatusUnauthorized, "wrong user name, password or token"
	default:
		a.opts.Logger.Error("rest api: login", "err", err)
		return login.User{}, http.StatusInternalServerError, "the metadata store failed; see the server's log"
	}
}

type userKey struct{}

// trustedKey marks requests made in this process by LocalClient; an HTTP
// request cannot carry it.
type trustedKey struct{}

// trusted is the API for LocalClient: every call runs as the admin.
func (a *API) trusted() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), trustedKey{}, true)))
	})
}

// authed wraps a handler with authentication; write handlers also need the
// admin role.
func (a *API) authed(write bool) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Value(trustedKey{}) != nil {
				h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, login.User{Name: login.AdminUser, Role: login.RoleAdmin})))
				return
			}
			u, status, detail := a.Authenticate(r)
			if status != 0 {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Basic realm="userstream"`)
				}
				problem(w, status, http.StatusText(status), detail)
				return
			}
			if write && u.Role != login.RoleAdmin {
				problem(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("user %q (%s) may read but not change anything", u.Name, u.Role))
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
		})
	}
}

// token is Airflow 3's simple auth manager's POST /auth/token (and, with
// cli, POST /auth/token/cli, airflowctl's login, whose tokens hold
// shorter): {"username","password"} -> 201 {"access_token"}, a JWT. Its
// errors are FastAPI's: {"detail"}, 422 for a body that does not validate.
func (a *API) token(cli bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := decode(r, &body); err != nil {
			v2Invalid(w, "body", err.Error())
			return
		}
		if body.Username == "" || body.Password == "" {
			v2Invalid(w, "body", "username and password are required")
			return
		}
		u, err := a.auth.Login(r.Context(), login.ClientAddr(r), body.Username, body.Password)
		var tok string
		if err == nil {
			if cli {
				tok, err = a.auth.CLIToken(r.Context(), u)
			} else {
				tok, err = a.auth.Token(r.Context(), u)
			}
		}
		switch {
		case errors.Is(err, login.ErrTooManyFailures):
			v2Error(w, http.StatusTooManyRequests, err.Error())
		case errors.Is(err, login.ErrUnauthorized):
			v2Error(w, http.StatusUnauthorized, "Invalid credentials")
		case err != nil:
			a.opts.Logger.Error("rest api: login", "err", err)
			v2Error(w, http.StatusInternalServerError, "the metadata store failed; see the server's log")
		default:
			writeJSON(w, http.StatusCreated, map[string]any{"access_token": tok})
		}
	}
}

// decode reads a JSON body strictly: unknown fields are an error.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return errors.New("the request has no JSON body")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the request has no JSON body")
		}
		return fmt.Errorf("the body is not valid JSON for this call: %v", err)
	}
	return nil
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	meta := map[string]any{"status": "healthy"}
	if _, err := a.svc.Store().ListDAGs(r.Context()); err != nil {
		meta["status"] = "unhealthy"
	}
	sched := map[string]any{"status": "unknown", "latest_scheduler_heartbeat": nil}
	if a.opts.Heartbeat != nil {
		if hb := a.opts.Heartbeat(); !hb.IsZero() {
			sched["latest_scheduler_heartbeat"] = hb.UTC().Format(time.RFC3339Nano)
			sched["status"] = "healthy"
			if time.Since(hb) > 30*time.Second {
				sched["status"] = "unhealthy"
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadatabase": meta, "scheduler": sched})
}

// page reads limit and offset.
func (a *API) page(r *http.Request) (limit, offset int, err error) {
	limit, offset = 100, 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return 0, 0, fmt.Errorf("limit %q is not a number of 0 or more", v)
		}
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q is not a number of 0 or more", v)
		}
	}
	return min(limit, a.opts.MaxPageLimit), offset, nil
}
