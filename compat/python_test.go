package compat

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// compatPython is the interpreter of the virtual environment scripts/compat.sh
// built from requirements-compat.txt; the test skips without it, since
// the clients it drives are not installed anywhere else.
func compatPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("USERSTREAM_COMPAT_PYTHON")
	if py == "" {
		t.Skip("USERSTREAM_COMPAT_PYTHON is not set: run scripts/compat.sh (make compat), which installs the pinned clients of compat/requirements-compat.txt")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("USERSTREAM_COMPAT_PYTHON: %v", err)
	}
	return py
}

// runPython runs a script of this folder with the compat interpreter and
// decodes the JSON it prints into out; a failure shows its stderr.
func runPython(t *testing.T, out any, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), compatPython(t), args...)
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s: %v\n%s", args[0], err, ee.Stderr)
		}
		t.Fatalf("%s: %v", args[0], err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s printed %.300q: %v", args[0], b, err)
	}
}
