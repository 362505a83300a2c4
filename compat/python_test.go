package compat

import (
	"os"
	"os/exec"
	"testing"

	"github.com/userstream/userstream/internal/proctest"
)

// compatPython is the interpreter of the virtual environment scripts/compat.sh
// built from requirements-compat.txt; the test skips without it, since
// the clients it drives are not installed anywhere else.
func compatPython(t *testing.T) string {
	t.Helper()
	return venvPython(t, "USERSTREAM_COMPAT_PYTHON", "requirements-compat.txt")
}

// airflow3Python is the interpreter of the second environment
// scripts/compat.sh builds, for Airflow 3's client and airflowctl (they
// share a module name with Airflow 2's client, so they cannot live in one).
func airflow3Python(t *testing.T) string {
	t.Helper()
	return venvPython(t, "USERSTREAM_COMPAT_AIRFLOW3_PYTHON", "requirements-airflow3.txt")
}

// venvPython is the interpreter the environment variable env names.
func venvPython(t *testing.T, env, requirements string) string {
	t.Helper()
	py := os.Getenv(env)
	if py == "" {
		t.Skipf("%s is not set: run scripts/compat.sh (make compat), which installs the pinned clients of compat/%s", env, requirements)
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return py
}

// runPython runs a script of this folder with the compat interpreter and
// decodes the JSON it prints into out; a failure shows its stderr.
func runPython(t *testing.T, out any, args ...string) {
	t.Helper()
	runPythonWith(t, compatPython(t), out, args...)
}

// runPythonWith is runPython with another interpreter.
func runPythonWith(t *testing.T, py string, out any, args ...string) {
	t.Helper()
	proctest.OutputJSON(t, exec.CommandContext(t.Context(), py, args...), out)
}
