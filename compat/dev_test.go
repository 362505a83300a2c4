package compat

import (
	"testing"
	"time"

	"github.com/userstream/userstream/internal/proctest"
)

// TestAirflowClientsOnDev is the must-show against `userstream dev`
// itself, a real process as a user starts it: Airflow 2's client
// (apache-airflow-client 2.x, /api/v1, basic auth) and Airflow 3's (3.x,
// /api/v2, a token) each trigger a run of user_automation, find it in the
// list of runs, wait for its success and read its task's log (which says
// it produced the users the conf asked for); and airflowctl lists the DAGs
// with a token (its user and password login is TestAirflowctl's, on the
// same handler: once is enough for the quick form).
func TestAirflowClientsOnDev(t *testing.T) {
	py2, py3 := compatPython(t), airflow3Python(t)
	const password = "compat-dev-admin-password"
	dir := t.TempDir()
	web := proctest.FreeAddr(t)
	dev := proctest.StartEnv(t, "dev", []string{"USERSTREAM_ADMIN_PASSWORD=" + password},
		"dev", "--data-dir", dir, "--kafka-addr", proctest.FreeAddr(t), "--registry-addr", proctest.FreeAddr(t),
		"--api-addr", proctest.FreeAddr(t), "--metrics-addr", proctest.FreeAddr(t), "--connect-addr", proctest.FreeAddr(t),
		"--web-addr", web, "--schedule", "none")
	// dev binds its web port first and answers 503 there until the UI is
	// built; the banner says everything is up.
	dev.WaitOutput(t, "userstream dev is running", 90*time.Second)
	base := "http://" + web
	for _, c := range []struct{ version, py string }{{"v1", py2}, {"v2", py3}} {
		t.Run(c.version, func(t *testing.T) {
			var got map[string]any
			runPythonWith(t, c.py, &got, "airflow_on_dev.py", base, "admin", password, c.version)
			proctest.WantResults(t, got, map[string]any{"listed": true, "state": "success", "manual": true, "log_produced": true})
		})
	}
	t.Run("airflowctl", func(t *testing.T) { checkAirflowctl(t, py3, base, "admin", password, false) })
}
