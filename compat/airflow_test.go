package compat

import (
	"testing"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/scheduler/restapi/restapitest"
)

// TestAirflowClientV1: Airflow's own Python client for /api/v1 (its
// generated models check every answer's fields and types) lists, gets,
// pauses and unpauses the DAG, triggers runs with conf, reads runs, task
// instances and a try's log, clears, marks and deletes, and gets Airflow's
// status for each call that must fail.
func TestAirflowClientV1(t *testing.T) {
	compatPython(t)
	srv, _ := restapitest.Server(t)
	var got map[string]any
	runPython(t, &got, "airflow_client_v1.py", srv.URL, "admin", restapitest.Password)
	want := map[string]any{
		"health":           "healthy",
		"dags":             []any{"user_automation"},
		"dags_total":       1.0,
		"dag":              map[string]any{"dag_id": "user_automation", "owners": []any{"airscholar"}, "tags": []any{"userstream"}},
		"paused":           true,
		"paused_in_list":   1.0,
		"unpaused":         false,
		"triggered":        map[string]any{"run_type": "manual", "conf": map[string]any{"users": 10.0}, "manual": true},
		"named":            "compat_named",
		"run_done":         map[string]any{"state": "success", "has_end_date": true},
		"runs_total":       2.0,
		"runs_listed":      true,
		"task_instances":   []any{map[string]any{"task_id": "stream_data_from_api", "state": "success", "try_number": 1.0}},
		"task_instance":    map[string]any{"task_id": "stream_data_from_api", "state": "success", "same_run": true},
		"log_has_line":     true,
		"cleared":          "queued",
		"marked":           "failed",
		"runs_total_after": 1.0,
		"errors": map[string]any{"trigger_taken_run_id": 409.0, "trigger_unknown_dag": 404.0,
			"log_missing_try": 404.0, "unknown_run": 404.0, "deleted_run": 404.0},
	}
	proctest.WantResults(t, got, want)
}
