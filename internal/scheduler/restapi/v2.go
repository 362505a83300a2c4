package restapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Airflow 3's REST API, /api/v2, beside v1 on the same handler. It serves
// the operations v1 serves, under v2's paths and in v2's shapes: bearer
// tokens only (POST /auth/token), {"detail"} errors, 422 for a request that
// does not validate, RFC 3339 times, run_after and no execution_date. Each
// call is answered by its v1 twin, translated both ways, so the two
// versions cannot drift apart.

// v2Routes are the v2 paths served, by their v1 twin's path.
var v2Routes = []struct{ pattern, v1 string }{
	{"GET /api/v2/monitor/health", "/api/v1/health"},
	{"GET /api/v2/dags", "/api/v1/dags"},
	{"GET /api/v2/dags/{dag_id}", "/api/v1/dags/{dag_id}"},
	{"PATCH /api/v2/dags/{dag_id}", "/api/v1/dags/{dag_id}"},
	{"GET /api/v2/dags/{dag_id}/dagRuns", "/api/v1/dags/{dag_id}/dagRuns"},
	{"POST /api/v2/dags/{dag_id}/dagRuns", "/api/v1/dags/{dag_id}/dagRuns"},
	{"GET /api/v2/dags/{dag_id}/dagRuns/{run_id}", "/api/v1/dags/{dag_id}/dagRuns/{run_id}"},
	{"PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}", "/api/v1/dags/{dag_id}/dagRuns/{run_id}"},
	{"DELETE /api/v2/dags/{dag_id}/dagRuns/{run_id}", "/api/v1/dags/{dag_id}/dagRuns/{run_id}"},
	{"POST /api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/clear"},
	{"GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances"},
	{"GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"},
	{"GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}", "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}"},
}

// v2Dropped are v2 request fields v1 does not take, by method; they are
// accepted and have no effect (see docs/operations.md).
var v2Dropped = map[string][]string{
	"POST": {"run_after", "partition_key", "only_failed", "run_on_latest_version"},
}

func (a *API) routesV2() {
	for _, rt := range v2Routes {
		a.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) { a.v2(w, r, rt.v1) })
	}
	a.mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, r *http.Request) {
		v2Error(w, http.StatusNotFound, r.Method+" "+r.URL.Path+" is not a path of this API")
	})
}

// v2Error writes Airflow 3's error body (FastAPI's HTTPException).
func v2Error(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"detail": detail})
}

// v2 answers a v2 call with its v1 twin at v1path (path values filled in).
func (a *API) v2(w http.ResponseWriter, r *http.Request, v1path string) {
	// Airflow 3 takes bearer tokens only; health needs none.
	if !strings.HasSuffix(v1path, "/health") && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		w.Header().Set("WWW-Authenticate", "Bearer")
		v2Error(w, http.StatusUnauthorized, "Not authenticated")
		return
	}
	for _, name := range []string{"dag_id", "run_id", "task_id", "try"} {
		v1path = strings.Replace(v1path, "{"+name+"}", r.PathValue(name), 1)
	}
	r1 := r.Clone(r.Context())
	r1.URL.Path, r1.URL.RawPath = v1path, ""
	r1.RequestURI = ""
	r1.Header.Set("Accept", "application/json")
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodDelete {
		body, err := v2Request(r.Method, r.Body)
		if err != nil {
			v2Invalid(w, "body", err.Error())
			return
		}
		r1.Body, r1.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	rec := &responseRecorder{header: http.Header{}, code: http.StatusOK}
	a.mux.ServeHTTP(rec, r1)
	if rec.code == http.StatusNoContent {
		w.WriteHeader(rec.code)
		return
	}
	var v1 map[string]any
	if err := json.Unmarshal(rec.body.Bytes(), &v1); err != nil {
		a.opts.Logger.Error("rest api v2: v1 answer is not JSON", "path", v1path, "err", err)
		v2Error(w, http.StatusInternalServerError, "internal error; see the server's log")
		return
	}
	if rec.code >= 400 {
		detail, _ := v1["detail"].(string)
		if rec.code == http.StatusBadRequest {
			where := "query"
			if r.Method != http.MethodGet {
				where = "body"
			}
			v2Invalid(w, where, detail)
			return
		}
		if h := rec.header.Get("WWW-Authenticate"); h != "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		v2Error(w, rec.code, detail)
		return
	}
	writeJSON(w, rec.code, v2Answer(v1))
}

// v2Invalid is FastAPI's 422 for a request that does not validate.
func v2Invalid(w http.ResponseWriter, where, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{
		{"type": "value_error", "loc": []string{where}, "msg": msg, "input": nil}}})
}

// v2Request turns a v2 body into its v1 twin: the fields v1 does not take
// are dropped, a null logical_date means "now", as v1's absent one does.
func v2Request(method string, body io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return raw, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return raw, nil // v1 says what is wrong with it
	}
	for _, k := range v2Dropped[method] {
		delete(m, k)
	}
	if string(m["logical_date"]) == "null" {
		delete(m, "logical_date")
	}
	return json.Marshal(m)
}

// v2Answer turns a v1 answer (an object or a collection of them) into v2's.
func v2Answer(v1 map[string]any) map[string]any {
	for _, key := range []string{"dags", "dag_runs", "task_instances"} {
		if list, ok := v1[key].([]any); ok {
			for i, item := range list {
				if m, ok := item.(map[string]any); ok {
					list[i] = v2Object(m)
				}
			}
			return v1
		}
	}
	if content, ok := v1["content"].(string); ok { // a log
		lines := []map[string]any{}
		for _, l := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
			if l != "" {
				lines = append(lines, map[string]any{"event": l})
			}
		}
		return map[string]any{"content": lines, "continuation_token": v1["continuation_token"]}
	}
	if _, ok := v1["metadatabase"]; ok { // health
		v1["triggerer"] = map[string]any{"status": nil, "latest_triggerer_heartbeat": nil}
		return v1
	}
	return v2Object(v1)
}

// v2Object turns a v1 DAG, DAG run or task instance into v2's.
func v2Object(m map[string]any) map[string]any {
	for k, v := range m {
		if s, ok := v.(string); ok {
			if t, err := time.Parse("2006-01-02T15:04:05.000000+00:00", s); err == nil {
				m[k] = t.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	dagID, _ := m["dag_id"].(string)
	m["dag_display_name"] = dagID
	switch {
	case m["task_id"] != nil: // a task instance
		m["logical_date"], m["run_after"] = m["execution_date"], m["execution_date"]
		m["task_display_name"] = m["task_id"]
		m["operator_name"] = m["operator"]
		// A stable id per (dag, run, task), as Airflow's task instance uuid is.
		m["id"] = uuid.NewSHA1(uuid.NameSpaceURL, []byte(dagID+"/"+m["dag_run_id"].(string)+"/"+m["task_id"].(string))).String()
		delete(m, "execution_date")
		delete(m, "sla_miss")
	case m["dag_run_id"] != nil: // a DAG run
		m["run_after"] = m["logical_date"]
		if m["run_after"] == nil {
			m["run_after"] = m["queued_at"]
		}
		m["dag_versions"] = []any{}
		m["triggered_by"] = "rest_api"
		delete(m, "execution_date")
		delete(m, "external_trigger")
	default: // a DAG
		tags := []any{}
		if list, ok := m["tags"].([]any); ok {
			for _, t := range list {
				if tm, ok := t.(map[string]any); ok {
					tags = append(tags, map[string]any{"name": tm["name"], "dag_id": dagID, "dag_display_name": dagID})
				}
			}
		}
		m["tags"] = tags
		m["is_stale"] = m["is_active"] == false
		m["timetable_summary"] = m["timetable_description"]
		m["timetable_partitioned"] = false
		m["max_consecutive_failed_dag_runs"] = 0
		m["next_dagrun_logical_date"] = m["next_dagrun"]
		m["next_dagrun_run_after"] = m["next_dagrun_create_after"]
		for _, k := range []string{"root_dag_id", "is_subdag", "is_active", "schedule_interval", "default_view",
			"next_dagrun", "next_dagrun_create_after"} {
			delete(m, k)
		}
	}
	return m
}
