package compat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/scheduler/restapi/restapitest"
)

// TestAirflowClientV2: Airflow 3's own Python client for /api/v2, with a
// token from POST /auth/token, lists, gets, pauses and unpauses the DAG,
// triggers a run with a null logical_date, reads runs, task instances and
// a try's log, clears, marks and deletes; without a token, with basic auth
// and with a body that does not validate it gets Airflow 3's statuses.
func TestAirflowClientV2(t *testing.T) {
	py := airflow3Python(t)
	srv, _ := restapitest.Server(t)
	var got map[string]any
	runPythonWith(t, py, &got, "airflow_client_v2.py", srv.URL, "admin", restapitest.Password)
	want := map[string]any{
		"token_status":           201.0,
		"health":                 "healthy",
		"dags":                   []any{"user_automation"},
		"dags_total":             1.0,
		"dag":                    map[string]any{"dag_id": "user_automation", "owners": []any{"airscholar"}, "tags": []any{"userstream"}},
		"paused":                 true,
		"unpaused":               false,
		"triggered":              map[string]any{"run_type": "manual", "conf": map[string]any{"users": 10.0}, "has_run_after": true, "manual": true},
		"run_done":               map[string]any{"state": "success", "has_end_date": true},
		"runs_total":             1.0,
		"task_instance":          map[string]any{"task_id": "stream_data_from_api", "state": "success", "try_number": 1.0},
		"task_instance_same_run": true,
		"log_has_line":           true,
		"cleared":                "queued",
		"marked":                 "failed",
		"errors": map[string]any{"no_token": 401.0, "basic_auth": 401.0, "trigger_taken_run_id": 409.0,
			"trigger_unknown_dag": 404.0, "trigger_bad_conf": 422.0, "unknown_run": 404.0, "deleted_run": 404.0},
	}
	checkResults(t, got, want)
}

// TestAirflowctl: Airflow 3's command line client (airflowctl) lists our
// DAGs with a token from POST /auth/token, as its users do: auth login
// with the API's URL and the token, then dags list.
func TestAirflowctl(t *testing.T) {
	py := airflow3Python(t)
	srv, _ := restapitest.Server(t)
	tok := airflowToken(t, srv.URL, "admin", restapitest.Password)
	ctl := filepath.Join(filepath.Dir(py), "airflowctl")
	env := append(os.Environ(), "AIRFLOW_HOME="+t.TempDir())
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), ctl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("airflowctl %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
		return string(out)
	}
	run("auth", "login", "--api-url", srv.URL, "--api-token", tok, "--skip-keyring")
	out := run("dags", "list", "--api-token", tok, "--output", "json")
	var dags []map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &dags); err != nil {
		t.Fatalf("dags list printed %q: %v", out, err)
	}
	// airflowctl prints booleans as Python does.
	if len(dags) != 1 || dags[0]["dag_id"] != "user_automation" || fmt.Sprint(dags[0]["is_paused"]) != "False" {
		t.Fatalf("dags list: %v, want user_automation, not paused", dags)
	}
}

// airflowToken is a bearer token from POST /auth/token (201 {"access_token"}).
func airflowToken(t *testing.T, base, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(base+"/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated || tok.AccessToken == "" {
		t.Fatalf("POST /auth/token: %d %v, want 201 with an access_token", resp.StatusCode, err)
	}
	return tok.AccessToken
}
