package connect_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/testwait"
)

// refStep is one call of the script TestJVMReference sends to Apache Kafka
// Connect's worker and to ours.
type refStep struct {
	name, method, path string
	// body builds the request body for a side (its connector config);
	// nil sends none. A string is sent as it is (bad JSON).
	body func(s *refSide) any
	// noLogin sends ours no credentials (the JVM worker has no login).
	noLogin bool
	// then waits, after the call, until the connector is in this state
	// on that side ("" waits for nothing; "GONE" for its deletion).
	then string
	// data says the answer's keys are the plugin's (a config), so only
	// its values' types are compared.
	data bool
	// offsets waits, before the call, until the connector has committed
	// offsets on that side.
	offsets bool
}

// refSide is one worker under test.
type refSide struct {
	name   string
	url    string
	auth   bool           // send ours the test's basic auth
	config map[string]any // the connector's config on this side
	class  string         // its connector class
}

// refExplained are the rows where ours differs from the JVM worker on
// purpose, with why; the test fails when another row differs, or when one
// of these stops differing (the explanation would then be stale).
var refExplained = map[string]string{
	"delete an unknown connector without a login":      "ours needs a login for every state change (401), a JVM worker has none",
	"create with bad JSON":                             badJSON,
	"config put with bad JSON":                         badJSON,
	"offsets patch with bad JSON":                      badJSON,
	"config put of an unknown connector with bad JSON": badJSON,
	"validate an unknown class": "ours answers 400, what the JVM worker means: it throws a BadRequestException, " +
		"which 4.x wraps into a 500",
}

const badJSON = "a body that is not JSON (or not the expected JSON) is the client's mistake: ours answers 400 saying what is wrong, the JVM worker 500 with its parser's message"

const refConnector = "ref"

// connector is the connector a step's call is about: the one its path
// names, else (a create) refConnector.
func (st refStep) connector() string {
	if rest, ok := strings.CutPrefix(st.path, "/connectors/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return refConnector
}

func refScript() []refStep {
	cfg := func(s *refSide) any { return s.config }
	with := func(k, v string) func(s *refSide) any {
		return func(s *refSide) any {
			c := map[string]any{}
			for key, val := range s.config {
				c[key] = val
			}
			c[k] = v
			return c
		}
	}
	validate := func(extra map[string]any) func(s *refSide) any {
		return func(s *refSide) any {
			c := map[string]any{}
			for key, val := range s.config {
				c[key] = val
			}
			for key, val := range extra {
				c[key] = val
			}
			return c
		}
	}
	base := "/connectors/" + refConnector
	return []refStep{
		{name: "server info", method: "GET", path: "/"},
		{name: "create", method: "POST", path: "/connectors", body: func(s *refSide) any {
			return map[string]any{"name": refConnector, "config": s.config}
		}, then: "RUNNING"},
		{name: "duplicate create", method: "POST", path: "/connectors", body: func(s *refSide) any {
			return map[string]any{"name": refConnector, "config": s.config}
		}},
		{name: "create without a name", method: "POST", path: "/connectors", body: func(s *refSide) any {
			return map[string]any{"config": s.config}
		}},
		{name: "create with bad JSON", method: "POST", path: "/connectors", body: func(*refSide) any { return `{"name": "x",` }},
		{name: "list", method: "GET", path: "/connectors"},
		{name: "list expanded", method: "GET", path: "/connectors?expand=status&expand=info"},
		{name: "get", method: "GET", path: base},
		{name: "config get", method: "GET", path: base + "/config", data: true},
		{name: "config put", method: "PUT", path: base + "/config", body: cfg, then: "RUNNING"},
		{name: "config put with bad JSON", method: "PUT", path: base + "/config", body: func(*refSide) any { return `{` }},
		{name: "config patch", method: "PATCH", path: base + "/config", body: func(*refSide) any {
			return map[string]any{"errors.log.enable": "true"}
		}, then: "RUNNING"},
		{name: "config put of a new connector", method: "PUT", path: "/connectors/ref-put/config", body: cfg},
		{name: "delete of the new connector", method: "DELETE", path: "/connectors/ref-put", then: "GONE"},
		{name: "status", method: "GET", path: base + "/status"},
		{name: "tasks", method: "GET", path: base + "/tasks"},
		{name: "task status", method: "GET", path: base + "/tasks/0/status"},
		{name: "unknown task status", method: "GET", path: base + "/tasks/7/status"},
		{name: "topics", method: "GET", path: base + "/topics"},
		{name: "offsets while running", method: "GET", path: base + "/offsets", offsets: true},
		{name: "offsets patch while running", method: "PATCH", path: base + "/offsets", body: offsetsBody},
		{name: "offsets delete while running", method: "DELETE", path: base + "/offsets"},
		{name: "topics reset while running", method: "PUT", path: base + "/topics/reset"},
		{name: "pause", method: "PUT", path: base + "/pause", then: "PAUSED"},
		{name: "resume", method: "PUT", path: base + "/resume", then: "RUNNING"},
		{name: "restart", method: "POST", path: base + "/restart", then: "RUNNING"},
		{name: "restart includeTasks", method: "POST", path: base + "/restart?includeTasks=true", then: "RUNNING"},
		{name: "restart includeTasks onlyFailed", method: "POST", path: base + "/restart?includeTasks=true&onlyFailed=true", then: "RUNNING"},
		{name: "task restart", method: "POST", path: base + "/tasks/0/restart", then: "RUNNING"},
		{name: "unknown task restart", method: "POST", path: base + "/tasks/7/restart"},
		{name: "stop", method: "PUT", path: base + "/stop", then: "STOPPED"},
		{name: "offsets while stopped", method: "GET", path: base + "/offsets"},
		{name: "offsets patch while stopped", method: "PATCH", path: base + "/offsets", body: offsetsBody},
		{name: "offsets patch with bad JSON", method: "PATCH", path: base + "/offsets", body: func(*refSide) any { return `[` }},
		{name: "offsets delete while stopped", method: "DELETE", path: base + "/offsets"},
		{name: "validate", method: "PUT", path: "/connector-plugins/{class}/config/validate", body: validate(nil)},
		{name: "validate with a bad value", method: "PUT", path: "/connector-plugins/{class}/config/validate",
			body: validate(map[string]any{"tasks.max": "many"})},
		{name: "validate with an unknown key", method: "PUT", path: "/connector-plugins/{class}/config/validate",
			body: validate(map[string]any{"no.such.key": "1"})},
		{name: "validate an unknown class", method: "PUT", path: "/connector-plugins/NoSuchConnector/config/validate",
			body: with("connector.class", "NoSuchConnector")},
		{name: "plugins", method: "GET", path: "/connector-plugins"},
		{name: "delete", method: "DELETE", path: base, then: "GONE"},
		{name: "get a deleted connector", method: "GET", path: base},
		{name: "status of an unknown connector", method: "GET", path: "/connectors/nope/status"},
		{name: "config put of an unknown connector with bad JSON", method: "PUT", path: "/connectors/nope/config", body: func(*refSide) any { return `{"a":` }},
		{name: "pause an unknown connector", method: "PUT", path: "/connectors/nope/pause"},
		{name: "delete an unknown connector", method: "DELETE", path: "/connectors/nope"},
		{name: "delete an unknown connector without a login", method: "DELETE", path: "/connectors/nope", noLogin: true},
		{name: "unknown path", method: "GET", path: "/no/such/path"},
	}
}

func offsetsBody(*refSide) any {
	return map[string]any{"offsets": []any{map[string]any{
		"partition": map[string]any{"kafka_topic": broker.Topic, "kafka_partition": 0},
		"offset":    map[string]any{"kafka_offset": 1},
	}}}
}

// TestJVMReference sends the same script of REST calls to Apache Kafka
// Connect's own worker (4.x, FileStreamSink) and to ours (the JDBC sink
// into SQLite), both on one Apache Kafka node, and compares the status
// codes and the shapes of the answers (keys and value types, not values).
// The table of docs/connect.md is its output: USERSTREAM_WRITE_DOCS=1
// rewrites it; otherwise the test fails when it differs.
func TestJVMReference(t *testing.T) {
	k := enginestest.StartKafka(t)
	ensureUserTopics(t, k.Brokers)
	addr := k.Bootstrap()
	jvm := enginestest.StartConnect(t, addr)
	ours := startWorker(t, addr, "worker-1:8083")
	produceUsers(t, addr, 0, 20)

	jdbc, _ := sinkURL(t)
	ourCfg := map[string]any{}
	for key, v := range jdbcConfig(jdbc) {
		ourCfg[key] = v
	}
	ourCfg["tasks.max"] = "1"
	sides := []*refSide{
		{name: "Apache Kafka Connect " + jvmVersion(t, jvm.URL), url: jvm.URL, class: "FileStreamSinkConnector", config: map[string]any{
			"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max": "1",
			"topics": broker.Topic, "file": filepath.Join(t.TempDir(), "sink.txt"),
		}},
		{name: "userstream", url: ours.url, auth: true, class: "JdbcSinkConnector", config: ourCfg},
	}

	var rows []refRow
	for _, st := range refScript() {
		var answers [2]refAnswer
		for i, s := range sides {
			if st.offsets {
				waitOffsets(t, s)
			}
			answers[i] = refCall(t, s, st)
			t.Logf("%s on %s: %d %.300s", st.name, s.name, answers[i].code, answers[i].raw)
			if st.then != "" {
				waitState(t, s, st.connector(), st.then)
			}
		}
		rows = append(rows, compareRow(st, answers))
	}

	table := refTable(sides, rows)
	var bad []string
	for _, r := range rows {
		why, explained := refExplained[r.name]
		switch {
		case r.diff != "" && !explained:
			bad = append(bad, fmt.Sprintf("%s: %s", r.name, r.diff))
		case r.diff == "" && explained:
			bad = append(bad, fmt.Sprintf("%s: now the same, but refExplained says %q: remove it", r.name, why))
		}
	}
	if len(bad) > 0 {
		t.Errorf("ours differs from the JVM worker:\n%s\n\n%s", strings.Join(bad, "\n"), table)
	}
	checkDocTable(t, table)
}

type refAnswer struct {
	code int
	body any // decoded JSON, nil when empty
	raw  string
}

type refRow struct {
	name, call string
	codes      [2]int
	diff       string // "" when the same
}

func refCall(t *testing.T, s *refSide, st refStep) refAnswer {
	t.Helper()
	path := strings.ReplaceAll(st.path, "{class}", s.class)
	var a refAnswer
	// A JVM worker answers 409 while its group rebalances after a config
	// change; the call is sent again then, as a client would.
	testwait.For(t, 60*time.Second, st.name+" on "+s.name+" answered other than 409 (rebalance)", func() (string, bool) {
		a = refDo(t, s, st.method, path, st.body, !st.noLogin)
		return a.raw, !(a.code == http.StatusConflict && strings.Contains(strings.ToLower(a.raw), "rebalanc"))
	})
	return a
}

func refDo(t *testing.T, s *refSide, method, path string, body func(*refSide) any, login bool) refAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body(s).(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if s.auth && login {
		req.SetBasicAuth(testUser, testPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, s.url, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := refAnswer{code: resp.StatusCode, raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			a.body = "<not JSON: " + strings.TrimSpace(string(raw)) + ">"
		}
	}
	return a
}

// waitState waits until the connector's status on s says state, with at
// least one task unless stopped ("GONE": until it is not found).
func waitState(t *testing.T, s *refSide, name, state string) {
	t.Helper()
	testwait.For(t, 90*time.Second, fmt.Sprintf("%s: connector %s %s", s.name, name, state), func() (string, bool) {
		a := refDo(t, s, "GET", "/connectors/"+name+"/status", nil, false)
		if state == "GONE" {
			return a.raw, a.code == http.StatusNotFound
		}
		var st connect.Status
		if a.code != http.StatusOK || json.Unmarshal([]byte(a.raw), &st) != nil || string(st.Connector.State) != state {
			return a.raw, false
		}
		if state == "STOPPED" {
			return a.raw, true
		}
		for _, task := range st.Tasks {
			if string(task.State) != state {
				return a.raw, false
			}
		}
		return a.raw, len(st.Tasks) > 0
	})
}

// waitOffsets waits until the connector on s has committed an offset.
func waitOffsets(t *testing.T, s *refSide) {
	t.Helper()
	testwait.For(t, 60*time.Second, s.name+": an offset committed by connector "+refConnector, func() (string, bool) {
		a := refDo(t, s, "GET", "/connectors/"+refConnector+"/offsets", nil, false)
		var o struct {
			Offsets []connect.Offset `json:"offsets"`
		}
		return a.raw, a.code == http.StatusOK && json.Unmarshal([]byte(a.raw), &o) == nil && len(o.Offsets) > 0
	})
}

func jvmVersion(t *testing.T, url string) string {
	t.Helper()
	var info struct {
		Version string `json:"version"`
	}
	a := refDo(t, &refSide{url: url}, "GET", "/", nil, false)
	_ = json.Unmarshal([]byte(a.raw), &info)
	return info.Version
}

func compareRow(st refStep, a [2]refAnswer) refRow {
	r := refRow{name: st.name, call: st.method + " " + st.path, codes: [2]int{a[0].code, a[1].code}}
	var diffs []string
	if a[0].code != a[1].code {
		diffs = append(diffs, fmt.Sprintf("status %d, ours %d", a[0].code, a[1].code))
	}
	diffs = append(diffs, shapeDiff("", freeKeys(st, a[0].body), freeKeys(st, a[1].body))...)
	r.diff = strings.Join(diffs, "; ")
	return r
}

// freeKeys replaces the objects whose keys are data, not API (connector
// configs, maps keyed by connector name), by one "*" key holding the
// merged shape of their values, so that plugin-specific keys and names
// are not compared.
func freeKeys(st refStep, v any) any {
	if st.data {
		return freeAt(v, "config")
	}
	return freeAt(v, "")
}

// dataObjects are the paths (as join writes them) of objects keyed by
// data: connector configs.
var dataObjects = []string{"config", "[].config", "*.info.config"}

func freeAt(v any, path string) any {
	switch x := v.(type) {
	case map[string]any:
		if slices.Contains(dataObjects, path) || path == "" && isNameMap(x) {
			var merged any
			for _, e := range x {
				merged = mergeShape(merged, freeAt(e, join(path, "*")))
			}
			return map[string]any{"*": merged}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = freeAt(e, join(path, k))
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = freeAt(e, join(path, "[]"))
		}
		return out
	}
	return v
}

// isNameMap reports whether a top-level object is keyed by connector
// names: the answers of topics and of list with expand.
func isNameMap(x map[string]any) bool {
	for k := range x {
		if strings.HasPrefix(k, refConnector) {
			return true
		}
	}
	return false
}

func mergeShape(a, b any) any {
	if a == nil {
		return b
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		out := map[string]any{}
		for k, v := range am {
			out[k] = v
		}
		for k, v := range bm {
			out[k] = mergeShape(out[k], v)
		}
		return out
	}
	return a
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	if k == "[]" {
		return path + "[]"
	}
	return path + "." + k
}

// shapeDiff lists where the shapes of a (the JVM's) and b (ours) differ:
// a key one has and the other not, or a value of another JSON type. null
// matches any type, an empty array any array; arrays compare the merged
// shape of their elements.
func shapeDiff(path string, a, b any) []string {
	if a == nil || b == nil {
		return nil
	}
	ta, tb := jsonType(a), jsonType(b)
	if ta != tb {
		return []string{fmt.Sprintf("%s: %s, ours %s", orRoot(path), ta, tb)}
	}
	switch x := a.(type) {
	case map[string]any:
		y := b.(map[string]any)
		var out []string
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			xv, xok := x[k]
			yv, yok := y[k]
			switch {
			case !yok:
				out = append(out, fmt.Sprintf("%s: ours lacks it", join(path, k)))
			case !xok:
				out = append(out, fmt.Sprintf("%s: only ours has it", join(path, k)))
			default:
				out = append(out, shapeDiff(join(path, k), xv, yv)...)
			}
		}
		return out
	case []any:
		y := b.([]any)
		if len(x) == 0 || len(y) == 0 {
			return nil
		}
		var mx, my any
		for _, e := range x {
			mx = mergeShape(mx, e)
		}
		for _, e := range y {
			my = mergeShape(my, e)
		}
		return shapeDiff(join(path, "[]"), mx, my)
	}
	return nil
}

func orRoot(p string) string {
	if p == "" {
		return "body"
	}
	return p
}

func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		if strings.HasPrefix(x, "<not JSON") {
			return "text"
		}
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func refTable(sides []*refSide, rows []refRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| call | request | %s | %s | result |\n| --- | --- | --- | --- | --- |\n", sides[0].name, sides[1].name)
	for _, r := range rows {
		res := "same"
		if why, ok := refExplained[r.name]; ok && r.diff != "" {
			res = "differs on purpose: " + why
		} else if r.diff != "" {
			res = "**differs**: " + r.diff
		}
		fmt.Fprintf(&b, "| %s | `%s` | %d | %d | %s |\n", r.name, r.call, r.codes[0], r.codes[1], res)
	}
	return b.String()
}

const (
	docBegin = "<!-- jvm-reference:begin (generated by TestJVMReference; USERSTREAM_WRITE_DOCS=1 rewrites it) -->\n"
	docEnd   = "<!-- jvm-reference:end -->"
)

// checkDocTable rewrites the table of docs/connect.md with
// USERSTREAM_WRITE_DOCS=1, else fails when it is not table.
func checkDocTable(t *testing.T, table string) {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "connect.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q markers", path, strings.TrimSpace(docBegin), docEnd)
	}
	next := doc[:i+len(docBegin)] + table + doc[j:]
	if os.Getenv("USERSTREAM_WRITE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if next != doc {
		t.Errorf("the table in %s is not what the script gives now; run it again with USERSTREAM_WRITE_DOCS=1 and review the change:\n%s", path, table)
	}
}
