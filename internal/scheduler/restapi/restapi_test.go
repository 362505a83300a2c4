package restapi_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/restapi/restapitest"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/testwait"
)

const password = restapitest.Password

func server(t *testing.T) (*httptest.Server, *scheduler.Scheduler) { return restapitest.Server(t) }

// call is one request: basic auth when user is set, else auth (a whole
// Authorization header) when that is.
type call struct {
	method, path, user, pass, body, auth string
}

func do(t *testing.T, srv *httptest.Server, c call) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	} else if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %s", c.method, c.path, raw)
		}
	}
	return resp.StatusCode, m
}

// TestRESTAsAnAirflowClient calls the API as a user of Airflow's stable
// REST API does: trigger with and without credentials, pause, bad bodies,
// the error shape.
func TestRESTAsAnAirflowClient(t *testing.T) {
	srv, _ := server(t)
	const dagRuns = "/api/v1/dags/user_automation/dagRuns"

	code, body := do(t, srv, call{method: "POST", path: dagRuns, user: "admin", pass: password, body: `{"conf": {"users": 10}}`})
	if code != 200 || !strings.HasPrefix(body["dag_run_id"].(string), "manual__") || body["run_type"] != "manual" ||
		body["state"] != "queued" || body["conf"].(map[string]any)["users"] != 10.0 {
		t.Fatalf("trigger: %d %v", code, body)
	}
	runID := body["dag_run_id"].(string)

	for name, c := range map[string]call{
		"no credentials":  {method: "POST", path: dagRuns, body: `{}`},
		"wrong password":  {method: "POST", path: dagRuns, user: "admin", pass: "nope", body: `{}`},
		"unknown user":    {method: "GET", path: "/api/v1/dags", user: "mallory", pass: password},
		"reads need auth": {method: "GET", path: "/api/v1/dags"},
	} {
		code, body := do(t, srv, c)
		if code != 401 || body["status"] != 401.0 || body["title"] == nil || !strings.Contains(body["type"].(string), "Unauthenticated") {
			t.Errorf("%s: %d %v, want 401 with Airflow's error body", name, code, body)
		}
	}
	if code, body := do(t, srv, call{method: "POST", path: dagRuns, user: "viewer", pass: password, body: `{}`}); code != 403 {
		t.Errorf("viewer triggering: %d %v, want 403", code, body)
	}
	if code, _ := do(t, srv, call{method: "GET", path: "/api/v1/dags", user: "viewer", pass: password}); code != 200 {
		t.Errorf("viewer reading: %d, want 200", code)
	}

	for name, b := range map[string]string{
		"not JSON":     `{"conf": `,
		"unknown key":  `{"conff": {}}`,
		"conf a list":  `{"conf": [1]}`,
		"bad date":     `{"logical_date": "yesterday"}`,
		"both dates":   `{"logical_date": "2026-01-01T00:00:00Z", "execution_date": "2026-01-01T00:00:00Z"}`,
		"bad run id":   `{"dag_run_id": "has spaces"}`,
		"empty object": ``,
	} {
		code, body := do(t, srv, call{method: "POST", path: dagRuns, user: "admin", pass: password, body: b})
		if code != 400 || body["status"] != 400.0 || body["title"] != "Bad Request" || body["detail"] == "" || body["type"] == nil {
			t.Errorf("%s: %d %v, want 400 with title, status, detail, type", name, code, body)
		}
	}
	if code, body := do(t, srv, call{method: "POST", path: "/api/v1/dags/nope/dagRuns", user: "admin", pass: password, body: `{}`}); code != 404 || body["status"] != 404.0 {
		t.Errorf("unknown DAG: %d %v, want 404", code, body)
	}
	if code, _ := do(t, srv, call{method: "POST", path: dagRuns, user: "admin", pass: password, body: `{"dag_run_id": "` + runID + `"}`}); code != 409 {
		t.Errorf("run id taken: %d, want 409", code)
	}

	// Pause via PATCH shows in the list.
	code, body = do(t, srv, call{method: "PATCH", path: "/api/v1/dags/user_automation?update_mask=is_paused", user: "admin", pass: password, body: `{"is_paused": true}`})
	if code != 200 || body["is_paused"] != true {
		t.Fatalf("pause: %d %v", code, body)
	}
	code, body = do(t, srv, call{method: "GET", path: "/api/v1/dags", user: "admin", pass: password})
	dags := body["dags"].([]any)
	if code != 200 || body["total_entries"] != 1.0 || dags[0].(map[string]any)["is_paused"] != true ||
		dags[0].(map[string]any)["owners"].([]any)[0] != "airscholar" {
		t.Fatalf("list after pause: %d %v", code, body)
	}
	do(t, srv, call{method: "PATCH", path: "/api/v1/dags/user_automation", user: "admin", pass: password, body: `{"is_paused": false}`})

	// The run ends; its task instance and its log are there.
	testwait.For(t, 20*time.Second, "run "+runID+" success", func() (map[string]any, bool) {
		_, body = do(t, srv, call{method: "GET", path: dagRuns + "/" + runID, user: "admin", pass: password})
		return body, body["state"] == "success"
	}, testwait.Every(100*time.Millisecond))
	code, body = do(t, srv, call{method: "GET", path: dagRuns + "/" + runID + "/taskInstances", user: "admin", pass: password})
	ti := body["task_instances"].([]any)[0].(map[string]any)
	if code != 200 || ti["task_id"] != "stream_data_from_api" || ti["state"] != "success" || ti["try_number"] != 1.0 {
		t.Fatalf("task instances: %d %v", code, body)
	}
	code, body = do(t, srv, call{method: "GET", path: dagRuns + "/" + runID + "/taskInstances/stream_data_from_api/logs/1", user: "admin", pass: password})
	if code != 200 || !strings.Contains(body["content"].(string), "streamed users=3") {
		t.Fatalf("log: %d %v", code, body)
	}
	if code, _ := do(t, srv, call{method: "GET", path: dagRuns + "/" + runID + "/taskInstances/stream_data_from_api/logs/2", user: "admin", pass: password}); code != 404 {
		t.Errorf("log of a try that does not exist: %d, want 404", code)
	}

	// Pagination: limit, offset, total_entries.
	for i := range 3 {
		do(t, srv, call{method: "POST", path: dagRuns, user: "admin", pass: password,
			body: `{"logical_date": "2026-01-0` + string(rune('1'+i)) + `T00:00:00Z"}`})
	}
	_, body = do(t, srv, call{method: "GET", path: dagRuns + "?limit=2&offset=1&order_by=logical_date", user: "admin", pass: password})
	runs := body["dag_runs"].([]any)
	if body["total_entries"] != 4.0 || len(runs) != 2 || runs[0].(map[string]any)["logical_date"] != "2026-01-02T00:00:00.000000+00:00" {
		t.Errorf("page: %v", body)
	}

	// Clear and delete.
	if code, body := do(t, srv, call{method: "POST", path: dagRuns + "/" + runID + "/clear", user: "admin", pass: password, body: `{"dry_run": false}`}); code != 200 || body["state"] != "queued" {
		t.Errorf("clear: %d %v", code, body)
	}
	if code, _ := do(t, srv, call{method: "DELETE", path: dagRuns + "/manual__2026-01-01T00:00:00+00:00", user: "admin", pass: password}); code != 204 {
		t.Errorf("delete: %d, want 204", code)
	}

	// Health needs no login.
	if code, body := do(t, srv, call{method: "GET", path: "/api/v1/health"}); code != 200 || body["metadatabase"].(map[string]any)["status"] != "healthy" {
		t.Errorf("health: %d %v", code, body)
	}
}

// TestBearerToken: POST /auth/token gives a token the API accepts.
func TestBearerToken(t *testing.T) {
	srv, _ := server(t)
	code, body := do(t, srv, call{method: "POST", path: "/auth/token", body: `{"username": "admin", "password": "` + password + `"}`})
	if code != 201 || body["access_token"] == nil {
		t.Fatalf("token: %d %v", code, body)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/dags", nil)
	req.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the token: %d", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer nonsense")
	resp, _ = srv.Client().Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("with a bad token: %d, want 401", resp.StatusCode)
	}
}

// TestLoginsRateLimited: after ten failed logins from one address, even a
// right password is refused for a while (429).
func TestLoginsRateLimited(t *testing.T) {
	srv, _ := server(t)
	for range 10 {
		do(t, srv, call{method: "GET", path: "/api/v1/dags", user: "admin", pass: "guess"})
	}
	if code, _ := do(t, srv, call{method: "GET", path: "/api/v1/dags", user: "admin", pass: password}); code != 429 {
		t.Errorf("after 10 failures: %d, want 429", code)
	}
}

// TestLogContinuationToken: a log's answer carries a continuation token
// (Airflow's clients require one); asked again with it the API sends only
// what came after, and a token it did not give is a 400. A task instance
// shows its run's logical date as its execution_date.
func TestLogContinuationToken(t *testing.T) {
	srv, _ := server(t)
	const dagRuns = "/api/v1/dags/user_automation/dagRuns"
	_, body := do(t, srv, call{method: "POST", path: dagRuns, user: "admin", pass: password, body: `{"logical_date": "2026-02-03T04:05:06Z"}`})
	runID := body["dag_run_id"].(string)
	testwait.For(t, 20*time.Second, "run "+runID+" success", func() (map[string]any, bool) {
		_, body = do(t, srv, call{method: "GET", path: dagRuns + "/" + runID, user: "admin", pass: password})
		return body, body["state"] == "success"
	}, testwait.Every(100*time.Millisecond))
	_, body = do(t, srv, call{method: "GET", path: dagRuns + "/" + runID + "/taskInstances/stream_data_from_api", user: "admin", pass: password})
	if body["execution_date"] != "2026-02-03T04:05:06.000000+00:00" {
		t.Errorf("task instance execution_date = %v, want the run's logical date", body["execution_date"])
	}
	logPath := dagRuns + "/" + runID + "/taskInstances/stream_data_from_api/logs/1"
	code, body := do(t, srv, call{method: "GET", path: logPath, user: "admin", pass: password})
	tok, _ := body["continuation_token"].(string)
	if code != 200 || tok == "" || !strings.Contains(body["content"].(string), "streamed users=3") {
		t.Fatalf("log: %d %v, want the content and a continuation_token", code, body)
	}
	code, body = do(t, srv, call{method: "GET", path: logPath + "?token=" + tok, user: "admin", pass: password})
	if code != 200 || body["content"] != "" || body["continuation_token"] != tok {
		t.Errorf("log after the token: %d %v, want no new content and the same token", code, body)
	}
	if code, body := do(t, srv, call{method: "GET", path: logPath + "?token=bogus", user: "admin", pass: password}); code != 400 {
		t.Errorf("log with a bad token: %d %v, want 400", code, body)
	}
}

// TestV2: Airflow 3's /api/v2 beside v1: bearer tokens only, {"detail"}
// errors, 422 for a body that does not validate, run_after and no
// execution_date, RFC 3339 times, total_entries.
func TestV2(t *testing.T) {
	srv, _ := server(t)
	_, body := do(t, srv, call{method: "POST", path: "/auth/token", body: `{"username": "admin", "password": "` + password + `"}`})
	tok := body["access_token"].(string)
	v2 := func(method, path, auth, reqBody string) (int, map[string]any) {
		t.Helper()
		return do(t, srv, call{method: method, path: path, auth: auth, body: reqBody})
	}
	bearer := "Bearer " + tok
	if code, m := v2("GET", "/api/v2/dags", "", ""); code != 401 || m["detail"] != "Not authenticated" {
		t.Errorf("no token: %d %v, want 401 Not authenticated", code, m)
	}
	if code, m := v2("GET", "/api/v2/dags", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+password)), ""); code != 401 {
		t.Errorf("basic auth: %d %v, want 401 (v2 takes tokens only)", code, m)
	}
	code, m := v2("POST", "/api/v2/dags/user_automation/dagRuns", bearer, `{"logical_date": null, "run_after": "2026-01-01T00:00:00Z", "conf": {"users": 2}}`)
	if code != 200 || m["run_after"] == nil || m["dag_versions"] == nil || m["conf"].(map[string]any)["users"] != 2.0 {
		t.Fatalf("trigger: %d %v", code, m)
	}
	if _, ok := m["execution_date"]; ok {
		t.Errorf("a v2 run has execution_date: %v", m)
	}
	if q, _ := m["queued_at"].(string); !strings.HasSuffix(q, "Z") {
		t.Errorf("queued_at %q is not RFC 3339 in UTC (Z)", q)
	}
	if code, m := v2("POST", "/api/v2/dags/user_automation/dagRuns", bearer, `{"conf": [1]}`); code != 422 {
		t.Errorf("conf a list: %d %v, want 422", code, m)
	} else if d, _ := m["detail"].([]any); len(d) != 1 || d[0].(map[string]any)["msg"] == "" {
		t.Errorf("422 body %v, want FastAPI's detail list", m)
	}
	if code, m := v2("GET", "/api/v2/dags/nope", bearer, ""); code != 404 || m["detail"] == nil || m["title"] != nil {
		t.Errorf("unknown DAG: %d %v, want 404 {\"detail\"}", code, m)
	}
	if code, m := v2("GET", "/api/v2/dags", bearer, ""); code != 200 || m["total_entries"] != 1.0 || m["dags"].([]any)[0].(map[string]any)["is_stale"] != false {
		t.Errorf("list: %d %v", code, m)
	}
	if code, m := v2("GET", "/api/v2/pools", bearer, ""); code != 404 || m["detail"] == nil {
		t.Errorf("unserved: %d %v, want 404 {\"detail\"}", code, m)
	}
}

// TestTokenEndpoints: Airflow 3's simple auth manager's POST /auth/token
// and airflowctl's POST /auth/token/cli give 201 {"access_token"} (a JWT
// v2 accepts); wrong credentials are 401 and a body without them 422, in
// FastAPI's {"detail"} shape; a token past its expiry is 401 on v2 in
// Airflow 3's shape and on v1 in Airflow 2's.
func TestTokenEndpoints(t *testing.T) {
	st, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := login.Ensure(t.Context(), st, password, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	svc, err := scheduler.NewService(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := httptest.NewServer(restapi.New(svc, login.New(st, login.WithClock(clock), login.WithCLITokenTTL(time.Minute)), restapi.Options{}))
	t.Cleanup(srv.Close)

	get := func(path, tok string) (int, map[string]any) {
		t.Helper()
		return do(t, srv, call{method: "GET", path: path, auth: "Bearer " + tok})
	}
	creds := `{"username": "admin", "password": "` + password + `"}`
	var cli string
	for _, path := range []string{"/auth/token", "/auth/token/cli"} {
		code, body := do(t, srv, call{method: "POST", path: path, body: creds})
		tok, _ := body["access_token"].(string)
		if code != http.StatusCreated || strings.Count(tok, ".") != 2 {
			t.Fatalf("POST %s: %d %v, want 201 with a JWT", path, code, body)
		}
		if code, body := get("/api/v2/dags", tok); code != http.StatusOK {
			t.Fatalf("v2 with %s's token: %d %v", path, code, body)
		}
		cli = tok
		code, body = do(t, srv, call{method: "POST", path: path, body: `{"username": "admin", "password": "wrong-pw-123"}`})
		if code != http.StatusUnauthorized || body["detail"] != "Invalid credentials" {
			t.Errorf("POST %s with a wrong password: %d %v, want 401 Invalid credentials", path, code, body)
		}
		code, body = do(t, srv, call{method: "POST", path: path, body: `{"username": "admin"}`})
		if detail, _ := body["detail"].([]any); code != http.StatusUnprocessableEntity || len(detail) != 1 {
			t.Errorf("POST %s without a password: %d %v, want 422", path, code, body)
		}
	}
	mu.Lock()
	now = now.Add(time.Minute) // the CLI token's TTL
	mu.Unlock()
	if code, body := get("/api/v2/dags", cli); code != http.StatusUnauthorized || body["detail"] == nil || body["title"] != nil {
		t.Errorf("v2 with an expired token: %d %v, want 401 {detail}", code, body)
	}
	if code, body := get("/api/v1/dags", cli); code != http.StatusUnauthorized || body["title"] == nil || body["status"] != 401.0 {
		t.Errorf("v1 with an expired token: %d %v, want 401 in Airflow 2's problem shape", code, body)
	}
	if code, body := do(t, srv, call{method: "GET", path: "/auth/nothing"}); code != http.StatusNotFound || body["detail"] == nil {
		t.Errorf("GET /auth/nothing: %d %v, want 404 {detail}", code, body)
	}
}
