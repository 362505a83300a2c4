package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/restapi/restapitest"
	"github.com/userstream/userstream/internal/testwait"
)

// airflowV1Operations are the operations of Airflow's v1 spec we serve;
// the others answer 404 (docs/operations.md).
var airflowV1Operations = []string{
	"get_health", "get_dags", "get_dag", "patch_dag", "get_dag_runs", "post_dag_run", "get_dag_run",
	"update_dag_run_state", "delete_dag_run", "clear_dag_run", "get_task_instances", "get_task_instance", "get_log",
}

// schemathesisChecks are what every answer must pass: no server error, a
// status the spec documents for the operation, the content type and body
// it documents.
const schemathesisChecks = "not_a_server_error,response_schema_conformance"

// schemathesis runs schemathesis with the compat interpreter against base,
// for the given operations of spec, and fails the test with its report
// when a check fails. The quick form (scripts/test.sh) tries fewer cases
// with a fixed seed; make compat more, with a fresh seed each time.
func schemathesis(t *testing.T, spec, base, config string, ops []string, args ...string) {
	t.Helper()
	py := compatPython(t)
	conf := filepath.Join(t.TempDir(), "schemathesis.toml")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	examples, seed, phases := "15", []string{"--seed", "21"}, "examples,fuzzing"
	if os.Getenv("USERSTREAM_COMPAT") == "long" {
		examples, seed, phases = "200", nil, "examples,coverage,fuzzing"
	}
	spec, err := filepath.Abs(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmdArgs := []string{"-m", "schemathesis.cli", "--config-file", conf, "run", spec, "--url", base, "--checks", schemathesisChecks,
		"--workers", "1", "--max-examples", examples, "--phases", phases,
		"--suppress-health-check", "all", "--continue-on-failure", "--report", "junit", "--report-dir", t.TempDir()}
	for _, op := range ops {
		cmdArgs = append(cmdArgs, "--include-operation-id", op)
	}
	cmdArgs = append(append(cmdArgs, seed...), args...)
	cmd := exec.CommandContext(t.Context(), py, cmdArgs...)
	// Its cache (.schemathesis/) goes in the working directory: not the tree.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "SCHEMATHESIS_HOOKS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis %s against %s: %v\n%s", filepath.Base(spec), base, err, out)
	}
	if !strings.Contains(string(out), "passed") {
		t.Fatalf("schemathesis ran no case:\n%s", out)
	}
	t.Logf("schemathesis %s:\n%s", filepath.Base(spec), tailLines(string(out), 25))
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestAirflowSpecV1: Airflow 2.10's published OpenAPI spec for /api/v1
// (airflow-v1.yaml) against our REST API with schemathesis, for every
// operation we serve: no server error, every status documented, every
// answer valid against the spec's schema.
//
// The path parameters name a real DAG, run, task and try, so that the
// answers checked are mostly the 200s with bodies rather than 404s; the
// query strings and bodies are generated, valid and invalid.
func TestAirflowSpecV1(t *testing.T) {
	compatPython(t)
	srv, _ := restapitest.Server(t)
	runID, deleted := finishedRun(t, srv.URL)
	config := realPaths(runID, deleted, "task_try_number")
	schemathesis(t, "airflow-v1.yaml", srv.URL+"/api/v1", config, airflowV1Operations, "--auth", "admin:"+restapitest.Password)
}

// airflowV2Operations are the operations of Airflow 3's v2 spec we serve.
var airflowV2Operations = []string{
	"get_health", "get_dags", "get_dag", "patch_dag", "get_dag_runs", "trigger_dag_run", "get_dag_run",
	"patch_dag_run", "delete_dag_run", "clear_dag_run", "get_task_instances", "get_task_instance", "get_log",
}

// TestAirflowSpecV2: Airflow 3's published OpenAPI spec for /api/v2
// (airflow-v2.yaml) against our REST API with schemathesis, with a bearer
// token from POST /auth/token, for every operation we serve, on a real
// DAG, run, task and try: no server error, every answer the spec
// documents valid against its schema.
func TestAirflowSpecV2(t *testing.T) {
	compatPython(t)
	srv, _ := restapitest.Server(t)
	runID, deleted := finishedRun(t, srv.URL)
	config := realPaths(runID, deleted, "try_number")
	tok := airflowToken(t, srv.URL, "admin", restapitest.Password)
	schemathesis(t, "airflow-v2.yaml", srv.URL, config, airflowV2Operations, "--header", "Authorization: Bearer "+tok)
}

// finishedRun triggers a run of user_automation and waits for its success,
// and triggers a second one for the delete operation; it returns both ids.
func finishedRun(t *testing.T, base string) (runID, deleted string) {
	t.Helper()
	admin, err := restapi.NewClient(base, "admin", restapitest.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	const runs = "/api/v1/dags/user_automation/dagRuns"
	var run restapi.DAGRun
	if _, err := admin.Do(t.Context(), "POST", runs, map[string]any{"conf": map[string]any{"users": 3}}, &run); err != nil {
		t.Fatal(err)
	}
	runID = run.DagRunID
	testwait.For(t, 20*time.Second, "run "+runID+" success", func() (string, bool) {
		if _, err := admin.Do(t.Context(), "GET", runs+"/"+restapi.PathEscape(runID), nil, &run); err != nil {
			t.Fatal(err)
		}
		return run.State, run.State == "success"
	}, testwait.Every(100*time.Millisecond))
	deleted = "to_delete"
	if _, err := admin.Do(t.Context(), "POST", runs, map[string]any{"dag_run_id": deleted}, nil); err != nil {
		t.Fatal(err)
	}
	return runID, deleted
}

// realPaths is schemathesis's configuration naming the real DAG, run, task
// and try (the spec's name for the try's path parameter is tryParam), and
// for the delete operation the run that may be deleted.
func realPaths(runID, deleted, tryParam string) string {
	return fmt.Sprintf(`[parameters]
"path.dag_id" = "user_automation"
"path.dag_run_id" = %q
"path.task_id" = "stream_data_from_api"
"path.%s" = 1

[[operations]]
include-operation-id = "delete_dag_run"
parameters = { "path.dag_run_id" = %q }
`, runID, tryParam, deleted)
}
