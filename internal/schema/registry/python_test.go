package registry_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/schematest"
)

// pythonWithClient is the interpreter that has Confluent's client: the
// pinned one of scripts/compat.sh (USERSTREAM_COMPAT_PYTHON, the version in
// compat/requirements-compat.txt) when set, else Debian's, for which
// python3-confluent-kafka installs.
func pythonWithClient() string {
	if py := os.Getenv("USERSTREAM_COMPAT_PYTHON"); py != "" {
		return py
	}
	return "/usr/bin/python3"
}

// TestConfluentPythonClient runs Confluent's own Python client
// (confluent_kafka.schema_registry, testdata/confluent_client.py) against
// the embedded registry: register, get_latest_version, lookup_schema,
// get_schema, test_compatibility true and false, set_compatibility and
// get_compatibility, delete_version and delete_subject soft and permanent,
// and the error_code of every SchemaRegistryError it must raise.
func TestConfluentPythonClient(t *testing.T) {
	python := pythonWithClient()
	if out, err := exec.Command(python, "-c", "import confluent_kafka.schema_registry").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import confluent_kafka.schema_registry (%v: %s); install Debian's python3-confluent-kafka to run this test", python, err, out)
	}
	dir := t.TempDir()
	reg := schematest.StartRegistry(t, filepath.Join(dir, "data"))
	userFile := filepath.Join(dir, "user.avsc")
	if err := os.WriteFile(userFile, []byte(schema.UserSchema()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), python, "testdata/confluent_client.py", reg.URL(), userFile)
	var got, want map[string]any
	proctest.OutputJSON(t, cmd, &got)
	if err := json.Unmarshal([]byte(wantPython), &want); err != nil {
		t.Fatal(err)
	}
	proctest.WantResults(t, got, want)
}

// wantPython is what Confluent's registry answers the script.
const wantPython = `{
	"register_v1": 1,
	"register_v1_again": 1,
	"register_v2": 2,
	"latest": {"id": 2, "version": 2, "subject": "users_created-value", "type": "AVRO", "same_text": true},
	"lookup_v1": {"id": 1, "version": 1, "subject": "users_created-value"},
	"get_schema_v1": true,
	"versions": [1, 2],
	"subjects": ["users_created-value"],
	"compatible_optional_field": true,
	"compatible_required_field": false,
	"compatible_post_code_int": false,
	"compatible_unknown_subject": true,
	"global_level_before": "BACKWARD",
	"set_subject_level": {"compatibility": "FULL"},
	"subject_level": "FULL",
	"set_global_level": {"compatibility": "FORWARD"},
	"global_level": "FORWARD",
	"delete_version_soft": 1,
	"delete_subject_soft": [2],
	"delete_subject_permanent": [1],
	"subjects_after": [],
	"errors": {
		"register_incompatible": 409,
		"register_invalid": 42201,
		"compatibility_invalid": 42201,
		"compatibility_missing_version": 40402,
		"compatibility_invalid_version": 42202,
		"lookup_unknown_subject": 40401,
		"lookup_unknown_schema": 40403,
		"get_missing_version": 40402,
		"get_unknown_id": 40403,
		"set_invalid_level": 42203,
		"subject_level_not_set": 40408,
		"delete_version_soft_again": 40406,
		"delete_subject_soft_again": 40404,
		"get_versions_soft_deleted": 40401,
		"get_versions_permanently_deleted": 40401,
		"delete_unknown_subject": 40401
	}
}`
