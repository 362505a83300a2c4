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

	"github.com/userstream/userstream/internal/proctest"
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
	proctest.WantResults(t, got, want)
}

// TestAirflowctl: Airflow 3's command line client (airflowctl) lists our
// DAGs as its users do: auth login with the API's URL and a token from
// POST /auth/token, then dags list; and auth login with a user name and
// password (its POST /auth/token/cli), then dags list with the token it
// keeps.
func TestAirflowctl(t *testing.T) {
	py := airflow3Python(t)
	srv, _ := restapitest.Server(t)
	checkAirflowctl(t, py, srv.URL, "admin", restapitest.Password, true)
}

// checkAirflowctl runs airflowctl against base: a token login and, with
// withPassword, a user and password login, each followed by dags list,
// which must show user_automation, not paused.
func checkAirflowctl(t *testing.T, py, base, user, password string, withPassword bool) {
	t.Helper()
	ctl := filepath.Join(filepath.Dir(py), "airflowctl")
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), ctl, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("airflowctl %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
		if strings.Contains(string(out), password) {
			t.Fatalf("airflowctl %s printed the password", strings.Join(args[:2], " "))
		}
		return string(out)
	}
	dagsListed := func(how, out string) {
		t.Helper()
		var dags []map[string]any
		i := strings.Index(out, "[")
		if i < 0 {
			t.Fatalf("%s: dags list printed %q", how, out)
		}
		if err := json.Unmarshal([]byte(out[i:]), &dags); err != nil {
			t.Fatalf("%s: dags list printed %q: %v", how, out, err)
		}
		// airflowctl prints booleans as Python does.
		if len(dags) != 1 || dags[0]["dag_id"] != "user_automation" || fmt.Sprint(dags[0]["is_paused"]) != "False" {
			t.Fatalf("%s: dags list: %v, want user_automation, not paused", how, dags)
		}
	}

	tok := airflowToken(t, base, user, password)
	env := []string{"AIRFLOW_HOME=" + t.TempDir()}
	run(env, "auth", "login", "--api-url", base, "--api-token", tok, "--skip-keyring")
	dagsListed("with a token", run(env, "dags", "list", "--api-token", tok, "--output", "json"))
	if !withPassword {
		return
	}

	// A user and password login keeps its token in the keyring; there is
	// none here, so in airflowctl's debug mode's file, and dags list reads
	// it from there.
	env = []string{"AIRFLOW_HOME=" + t.TempDir(), "AIRFLOW_CLI_DEBUG_MODE=true"}
	run(env, "auth", "login", "--api-url", base, "--username", user, "--password", password)
	dagsListed("after a user and password login", run(env, "dags", "list", "--output", "json"))
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
