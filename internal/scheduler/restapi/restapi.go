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
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

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
	auth *scheduler.Authenticator
	opts Options
	mux  *http.ServeMux
}

// New returns the REST API over svc, checking logins with auth.
func New(svc *scheduler.Service, auth *scheduler.Authenticator, opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPageLimit <= 0 {
		opts.MaxPageLimit = 100
	}
	a := &API{svc: svc, auth: auth, opts: opts, mux: http.NewServeMux()}
	read, write := a.authed(false), a.authed(true)
	a.mux.HandleFunc("GET /api/v1/health", a.health)
	a.mux.HandleFunc("POST /auth/token", a.token)
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

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authenticate checks a request's basic auth or bearer token, rate
// limited by client address (scheduler.MaxLoginFailures).
func (a *API) Authenticate(r *http.Request) (scheduler.User, int, string) {
	u, err := a.auth.Request(r)
	switch {
	case err == nil:
		return u, 0, ""
	case errors.Is(err, scheduler.ErrNoCredentials):
		return scheduler.User{}, http.StatusUnauthorized, err.Error()
	case errors.Is(err, scheduler.ErrTooManyFailures):
		return scheduler.User{}, http.StatusTooManyRequests, err.Error()
	case errors.Is(err, scheduler.ErrUnauthorized):
		return scheduler.User{}, http.StatusUnauthorized, "wrong user name, password or token"
	default:
		a.opts.Logger.Error("rest api: login", "err", err)
		return scheduler.User{}, http.StatusInternalServerError, "the metadata store failed; see the server's log"
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
				h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, scheduler.User{Name: scheduler.AdminUser, Role: scheduler.RoleAdmin})))
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
			if write && u.Role != scheduler.RoleAdmin {
				problem(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("user %q (%s) may read but not change anything", u.Name, u.Role))
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
		})
	}
}

// token issues a bearer token for a user name and password:
// {"username","password"} -> {"access_token","token_type","expires_in"}.
func (a *API) token(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	u, err := a.auth.LoginFrom(r.Context(), clientAddr(r), body.Username, body.Password)
	if err != nil {
		if errors.Is(err, scheduler.ErrTooManyFailures) {
			problem(w, http.StatusTooManyRequests, "Too Many Requests", err.Error())
			return
		}
		if errors.Is(err, scheduler.ErrUnauthorized) {
			problem(w, http.StatusUnauthorized, "Unauthorized", "wrong user name or password")
			return
		}
		a.fail(w, err, "login")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"access_token": a.auth.Token(u), "token_type": "Bearer", "expires_in": 86400})
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
