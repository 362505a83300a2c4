package connect

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/userstream/userstream/internal/redact"
)

// Authorize decides whether a request that changes state may proceed; it
// returns an error saying why not: one matching ErrForbidden is answered
// 403 (known, but not allowed), any other 401 (who is it?).
type Authorize func(r *http.Request) error

// ErrForbidden marks an Authorize error about a user who may not change
// anything.
var ErrForbidden = errors.New("forbidden")

// Handler serves Kafka Connect's REST API for w. Calls that change state
// (POST, PUT, PATCH, DELETE) must pass auth; validation, though a PUT,
// changes nothing and is open like the GETs.
func Handler(w *Worker, auth Authorize) http.Handler {
	h := &api{w: w}
	mux := http.NewServeMux()
	open := func(pattern string, f func(http.ResponseWriter, *http.Request)) { mux.HandleFunc(pattern, f) }
	guarded := func(pattern string, f func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
			if err := auth(r); err != nil {
				if errors.Is(err, ErrForbidden) {
					writeError(rw, http.StatusForbidden, err.Error())
					return
				}
				rw.Header().Set("WWW-Authenticate", `Basic realm="userstream connect"`)
				writeError(rw, http.StatusUnauthorized, err.Error())
				return
			}
			f(rw, r)
		})
	}
	open("GET /{$}", h.root)
	open("GET /connector-plugins", h.plugins)
	open("PUT /connector-plugins/{class}/config/validate", h.validate)
	open("GET /connectors", h.list)
	guarded("POST /connectors", h.create)
	open("GET /connectors/{name}", h.info)
	open("GET /connectors/{name}/config", h.config)
	guarded("PUT /connectors/{name}/config", h.putConfig)
	guarded("PATCH /connectors/{name}/config", h.patchConfig)
	open("GET /connectors/{name}/status", h.status)
	open("GET /connectors/{name}/tasks", h.tasks)
	open("GET /connectors/{name}/tasks/{id}/status", h.taskStatus)
	guarded("POST /connectors/{name}/restart", h.restart)
	guarded("POST /connectors/{name}/tasks/{id}/restart", h.restartTask)
	guarded("PUT /connectors/{name}/pause", h.target(StatePaused))
	guarded("PUT /connectors/{name}/resume", h.target(StateRunning))
	guarded("PUT /connectors/{name}/stop", h.target(StateStopped))
	guarded("DELETE /connectors/{name}", h.delete)
	open("GET /connectors/{name}/topics", h.topics)
	guarded("PUT /connectors/{name}/topics/reset", h.resetTopics)
	open("GET /connectors/{name}/offsets", h.offsets)
	guarded("PATCH /connectors/{name}/offsets", h.alterOffsets)
	guarded("DELETE /connectors/{name}/offsets", h.resetOffsets)
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		writeError(rw, http.StatusNotFound, "HTTP 404 Not Found")
	})
	return mux
}

type api struct{ w *Worker }

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, map[string]any{"error_code": code, "message": msg})
}

// fail answers err with Connect's status code for it.
func fail(rw http.ResponseWriter, err error) {
	var ce *ConfigError
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(rw, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrExists):
		writeError(rw, http.StatusConflict, err.Error())
	case errors.Is(err, ErrState):
		writeError(rw, http.StatusBadRequest, err.Error())
	case errors.As(err, &ce):
		writeError(rw, http.StatusBadRequest, err.Error())
	default:
		writeError(rw, http.StatusInternalServerError, err.Error())
	}
}

func decodeBody(rw http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(rw, r.Body, 1<<20)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(rw, http.StatusBadRequest, "Request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

func (h *api) root(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, map[string]string{"version": Version, "commit": "userstream", "kafka_cluster_id": h.w.cfg.GroupID})
}

func (h *api) plugins(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, Plugins())
}

func (h *api) validate(rw http.ResponseWriter, r *http.Request) {
	var cfg map[string]string
	if !decodeBody(rw, r, &cfg) {
		return
	}
	class := r.PathValue("class")
	if c, ok := cfg["connector.class"]; ok && c != class && !strings.HasSuffix(c, "."+class) {
		writeError(rw, http.StatusBadRequest, "connector.class "+strconv.Quote(c)+" differs from the class in the path")
		return
	}
	for _, p := range Plugins() {
		// Connect accepts the class's simple name in the path too.
		if class == p.Class || strings.HasSuffix(p.Class, "."+class) {
			class = p.Class
		}
	}
	if _, ok := pluginKeys(class); !ok {
		// 400 as the JVM worker means it (its BadRequestException, which
		// 4.x wraps into a 500).
		writeError(rw, http.StatusBadRequest, "Failed to find any class that implements Connector and which name matches "+class+
			"; GET /connector-plugins lists the classes")
		return
	}
	if _, ok := cfg["connector.class"]; !ok {
		cfg["connector.class"] = class
	}
	writeJSON(rw, http.StatusOK, Validate(class, cfg))
}

type connectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []taskID          `json:"tasks"`
	Type   string            `json:"type"`
}

type taskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

func (h *api) infoOf(name string) (connectorInfo, error) {
	cfg, err := h.w.Config(name)
	if err != nil {
		return connectorInfo{}, err
	}
	st, err := h.w.Status(name)
	if err != nil {
		return connectorInfo{}, err
	}
	ci := connectorInfo{Name: name, Config: redacted(cfg), Tasks: []taskID{}, Type: "sink"}
	for _, t := range st.Tasks {
		ci.Tasks = append(ci.Tasks, taskID{Connector: name, Task: t.ID})
	}
	return ci, nil
}

func (h *api) list(rw http.ResponseWriter, r *http.Request) {
	names := h.w.Connectors()
	if names == nil {
		names = []string{} // Connect answers [], never null
	}
	expand := r.URL.Query()["expand"]
	if len(expand) == 0 {
		writeJSON(rw, http.StatusOK, names)
		return
	}
	out := map[string]map[string]any{}
	for _, n := range names {
		e := map[string]any{}
		for _, x := range expand {
			switch x {
			case "status":
				if st, err := h.w.Status(n); err == nil {
					e["status"] = st
				}
			case "info":
				if ci, err := h.infoOf(n); err == nil {
					e["info"] = ci
				}
			}
		}
		out[n] = e
	}
	writeJSON(rw, http.StatusOK, out)
}

func (h *api) create(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if !decodeBody(rw, r, &body) {
		return
	}
	if body.Name == "" || strings.ContainsAny(body.Name, "/\\") {
		writeError(rw, http.StatusBadRequest, "Connector name is required and must not contain / or \\")
		return
	}
	if body.Config == nil {
		body.Config = map[string]string{}
	}
	if _, err := h.w.Put(r.Context(), body.Name, body.Config, true); err != nil {
		fail(rw, err)
		return
	}
	h.writeInfo(rw, http.StatusCreated, body.Name)
}

func (h *api) writeInfo(rw http.ResponseWriter, code int, name string) {
	ci, err := h.infoOf(name)
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, code, ci)
}

func (h *api) info(rw http.ResponseWriter, r *http.Request) {
	h.writeInfo(rw, http.StatusOK, r.PathValue("name"))
}

func (h *api) config(rw http.ResponseWriter, r *http.Request) {
	cfg, err := h.w.Config(r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, redacted(cfg))
}

func (h *api) putConfig(rw http.ResponseWriter, r *http.Request) {
	var cfg map[string]string
	if !decodeBody(rw, r, &cfg) {
		return
	}
	h.put(rw, r, r.PathValue("name"), cfg)
}

func (h *api) put(rw http.ResponseWriter, r *http.Request, name string, cfg map[string]string) {
	if old, err := h.w.Config(name); err == nil {
		cfg = unredacted(cfg, old)
	}
	created, err := h.w.Put(r.Context(), name, cfg, false)
	if err != nil {
		fail(rw, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	h.writeInfo(rw, code, name)
}

func (h *api) patchConfig(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var patch map[string]*string
	if !decodeBody(rw, r, &patch) {
		return
	}
	cfg, err := h.w.Config(name)
	if err != nil {
		fail(rw, err)
		return
	}
	next := map[string]string{}
	for k, v := range cfg {
		next[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(next, k) // Connect's PATCH: null removes a key
		} else {
			next[k] = *v
		}
	}
	h.put(rw, r, name, next)
}

func (h *api) status(rw http.ResponseWriter, r *http.Request) {
	st, err := h.w.Status(r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, st)
}

func (h *api) tasks(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ci, err := h.infoOf(name)
	if err != nil {
		fail(rw, err)
		return
	}
	type taskInfo struct {
		ID     taskID            `json:"id"`
		Config map[string]string `json:"config"`
	}
	out := []taskInfo{}
	for _, t := range ci.Tasks {
		out = append(out, taskInfo{ID: t, Config: ci.Config})
	}
	writeJSON(rw, http.StatusOK, out)
}

func (h *api) taskOf(rw http.ResponseWriter, r *http.Request) (Status, int, bool) {
	name := r.PathValue("name")
	st, err := h.w.Status(name)
	if err != nil {
		fail(rw, err)
		return Status{}, 0, false
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 || id >= len(st.Tasks) {
		writeError(rw, http.StatusNotFound, "Task "+name+"-"+r.PathValue("id")+" not found")
		return Status{}, 0, false
	}
	return st, id, true
}

func (h *api) taskStatus(rw http.ResponseWriter, r *http.Request) {
	if st, id, ok := h.taskOf(rw, r); ok {
		writeJSON(rw, http.StatusOK, st.Tasks[id])
	}
}

func (h *api) restart(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	include, only := q.Get("includeTasks") == "true", q.Get("onlyFailed") == "true"
	name := r.PathValue("name")
	if err := h.w.Restart(r.Context(), name, include, only); err != nil {
		fail(rw, err)
		return
	}
	if !include && !only {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	st, err := h.w.Status(name)
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusAccepted, st)
}

func (h *api) restartTask(rw http.ResponseWriter, r *http.Request) {
	if _, id, ok := h.taskOf(rw, r); ok {
		if err := h.w.RestartTask(r.Context(), r.PathValue("name"), id); err != nil {
			fail(rw, err)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}
}

func (h *api) target(state State) func(http.ResponseWriter, *http.Request) {
	return func(rw http.ResponseWriter, r *http.Request) {
		if err := h.w.SetTarget(r.Context(), r.PathValue("name"), state); err != nil {
			fail(rw, err)
			return
		}
		code := http.StatusAccepted
		if state == StateStopped {
			code = http.StatusNoContent
		}
		rw.WriteHeader(code)
	}
}

func (h *api) delete(rw http.ResponseWriter, r *http.Request) {
	if err := h.w.Delete(r.Context(), r.PathValue("name")); err != nil {
		fail(rw, err)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (h *api) topics(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	spec, err := h.w.Spec(name)
	if err != nil {
		fail(rw, err)
		return
	}
	topics := spec.Topics
	if topics == nil {
		topics = []string{}
	}
	writeJSON(rw, http.StatusOK, map[string]any{name: map[string]any{"topics": topics}})
}

// resetTopics answers as Connect does (202) for a known connector. Ours
// report a sink's configured topics, not the ones it has used since a
// reset, so there is nothing to clear.
func (h *api) resetTopics(rw http.ResponseWriter, r *http.Request) {
	if _, err := h.w.Spec(r.PathValue("name")); err != nil {
		fail(rw, err)
		return
	}
	rw.WriteHeader(http.StatusAccepted)
}

func (h *api) offsets(rw http.ResponseWriter, r *http.Request) {
	offs, err := h.w.Offsets(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"offsets": offs})
}

func (h *api) alterOffsets(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Offsets []Offset `json:"offsets"`
	}
	if !decodeBody(rw, r, &body) {
		return
	}
	if body.Offsets == nil {
		body.Offsets = []Offset{}
	}
	if err := h.w.AlterOffsets(r.Context(), r.PathValue("name"), body.Offsets); err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]string{"message": "The offsets for this connector have been altered successfully"})
}

func (h *api) resetOffsets(rw http.ResponseWriter, r *http.Request) {
	if err := h.w.AlterOffsets(r.Context(), r.PathValue("name"), nil); err != nil {
		fail(rw, err)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]string{"message": "The offsets for this connector have been reset successfully"})
}

// redacted returns cfg as the API shows it: GETs need no login, so a
// secret (connection.password, auth.password, sasl.jaas.config, a password
// in connection.url) is never sent back, as redact.Value hides it.
func redacted(cfg map[string]string) map[string]string {
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		out[k] = redact.Value(k, v)
	}
	return out
}

// unredacted returns cfg with each value that redacted hid (a config PUT
// back as it was returned) taken from old, the stored config.
func unredacted(cfg, old map[string]string) map[string]string {
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		if o, ok := old[k]; ok && v != o && v == redact.Value(k, o) {
			v = o
		}
		out[k] = v
	}
	return out
}
