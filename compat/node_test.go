package compat

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/userstream/userstream/internal/proctest"
)

// TestNodeSchemaRegistryClient: Confluent's Node.js client
// (@confluentinc/schemaregistry, pinned in node/package-lock.json) against
// `userstream registry` registers a schema under a subject, looks it up by
// id and by subject and version, finds a compatible change compatible and
// an incompatible one not, and gets Confluent's errors (409 for an
// incompatible registration, 40401 for an unknown subject). It skips only
// without node or npm; it installs the client with npm ci when
// scripts/compat.sh has not.
func TestNodeSchemaRegistryClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the Node.js client cannot run (apt-get install nodejs npm)")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed: the Node.js client cannot be installed (apt-get install npm)")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "@confluentinc", "schemaregistry", "package.json")); err != nil {
		cmd := exec.CommandContext(t.Context(), npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = "node"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in compat/node (is the npm registry reachable?): %v\n%s", err, out)
		}
	}
	addr := proctest.FreeAddr(t)
	reg := proctest.Start(t, "registry", "registry", "--addr", addr, "--data-dir", t.TempDir())
	proctest.WaitListening(t, reg, addr)

	cmd := exec.CommandContext(t.Context(), node, filepath.Join("node", "schemaregistry.js"), "http://"+addr)
	b, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("schemaregistry.js: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("schemaregistry.js printed %.300q: %v", b, err)
	}
	proctest.WantResults(t, got, map[string]any{
		"registered_id_positive": true,
		"by_id_same_schema":      true,
		"by_version":             map[string]any{"id_matches": true, "version": 1.0, "subject": "node-compat-value", "same_schema": true},
		"latest_version":         1.0,
		"lookup_version":         1.0,
		"lookup_id_matches":      true,
		"subject_listed":         true,
		"compatible":             true,
		"compatible_with_v1":     true,
		"incompatible":           false,
		"second_id_differs":      true,
		"versions":               []any{1.0, 2.0},
		"register_incompatible":  map[string]any{"status": 409.0, "error_code": 409.0},
		"unknown_subject":        map[string]any{"status": 404.0, "error_code": 40401.0},
	})
}
