package compat

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/userstream/userstream/internal/scheduler/restapi/restapitest"
)

// specOperation is one operation of an OpenAPI spec.
type specOperation struct{ ID, Method, Path string }

// specOperations lists the operations of the OpenAPI spec in file, by id.
func specOperations(t *testing.T, file string) []specOperation {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var ops []specOperation
	for path, methods := range spec.Paths {
		for method, raw := range methods {
			var op struct {
				ID string `json:"operationId"`
			}
			if json.Unmarshal(raw, &op) != nil || op.ID == "" {
				continue // "parameters", shared by the path's operations
			}
			ops = append(ops, specOperation{ID: op.ID, Method: strings.ToUpper(method), Path: path})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	return ops
}

// TestAirflowV1UnservedOperations: every operation of Airflow's v1 spec
// we do not serve answers 404 in Airflow's error shape (not 405, not a
// bare 404 page), and docs/operations.md names each of them.
func TestAirflowV1UnservedOperations(t *testing.T) {
	srv, _ := restapitest.Server(t)
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	n := 0
	for _, op := range specOperations(t, "airflow-v1.yaml") {
		if slices.Contains(airflowV1Operations, op.ID) {
			continue
		}
		n++
		if !strings.Contains(string(docs), "`"+op.ID+"`") {
			t.Errorf("docs/operations.md does not list %s (%s %s) among the operations not served", op.ID, op.Method, op.Path)
		}
		path := "/api/v1" + param.ReplaceAllString(op.Path, "1")
		var body io.Reader
		if op.Method != "GET" && op.Method != "DELETE" {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequestWithContext(t.Context(), op.Method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("admin", restapitest.Password)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var problem map[string]any
		err = json.NewDecoder(resp.Body).Decode(&problem)
		resp.Body.Close()
		if resp.StatusCode != 404 || err != nil || problem["status"] != 404.0 || problem["title"] == nil ||
			problem["detail"] == nil || !strings.HasSuffix(problem["type"].(string), "NotFound") {
			t.Errorf("%s (%s %s): %d %v (%v), want 404 with Airflow's error body", op.ID, op.Method, path, resp.StatusCode, problem, err)
		}
	}
	if n < 50 {
		t.Fatalf("only %d operations not served: is airflow-v1.yaml Airflow's whole v1 spec?", n)
	}
}
