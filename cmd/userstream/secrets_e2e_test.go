package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/broker"
	kconnect "github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/testwait"
)

// secretBook hands out one unique secret per carrier and keeps everything
// the program printed, logged, answered or served, to look for them all.
type secretBook struct {
	t       *testing.T
	secrets map[string]string // secret -> carrier
	outputs []output
	procs   []*proctest.Proc
}

type output struct{ what, text string }

// secret returns a new secret for carrier: fixed-length, so that no secret
// is a part of another, and of letters and digits, so that it reads the
// same escaped and not.
func (b *secretBook) secret(carrier string) string {
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	s := fmt.Sprintf("shh%03d%s", len(b.secrets), hex.EncodeToString(r))
	b.secrets[s] = carrier
	return s
}

// saw records one output.
func (b *secretBook) saw(what, text string) { b.outputs = append(b.outputs, output{what, text}) }

// run runs the binary to its end with env and records stdout and stderr.
func (b *secretBook) run(ctx context.Context, env []string, args ...string) (string, string, int) {
	b.t.Helper()
	out, errOut, code := proctest.RunContextEnv(ctx, b.t, env, args...)
	b.saw(fmt.Sprintf("userstream %s (exit %d): stdout", strings.Join(args, " "), code), out)
	b.saw(fmt.Sprintf("userstream %s (exit %d): stderr", strings.Join(args, " "), code), errOut)
	return out, errOut, code
}

// start starts a long-running command; its output is recorded at the end.
func (b *secretBook) start(name string, env []string, args ...string) *proctest.Proc {
	b.t.Helper()
	p := proctest.StartEnv(b.t, name, env, args...)
	b.procs = append(b.procs, p)
	return p
}

// waitOutput waits until p has printed want.
func (b *secretBook) waitOutput(p *proctest.Proc, want string) {
	b.t.Helper()
	testwait.For(b.t, 60*time.Second, p.Name+" to print "+want, func() (string, bool) {
		if p.Exited() {
			b.t.Fatalf("%s exited:\n%s", p.Name, p.Output())
		}
		out := p.Output()
		return proctest.Tail(out, 2000), strings.Contains(out, want)
	}, testwait.Every(100*time.Millisecond))
}

// http sends a request (basic auth when user is not empty) and records
// the answer's status and body.
func (b *secretBook) http(cl *http.Client, method, url, user, password string, body any) (int, string) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := cl.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	b.saw(fmt.Sprintf("%s %s (%d)", method, url, resp.StatusCode), string(got))
	return resp.StatusCode, string(got)
}

// check fails the test for every secret found in any output.
func (b *secretBook) check() {
	b.t.Helper()
	for _, p := range b.procs {
		p.Kill(b.t)
		b.saw(p.Name+": stdout and stderr", p.Output())
	}
	for _, o := range b.outputs {
		for s, carrier := range b.secrets {
			if i := strings.Index(o.text, s); i >= 0 {
				b.t.Errorf("the secret of %s appears in %s: ...%s...", carrier, o.what, o.text[max(0, i-150):min(len(o.text), i+len(s)+50)])
			}
		}
	}
}

// withPassword returns the libpq URL base with password in its user info
// (query false) or its password parameter (query true), and schema.
func withPassword(t *testing.T, base, password string, query bool, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if query {
		q.Set("password", password)
	} else {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// withUser returns the http(s) URL raw with user info user:password.
func withUser(raw, user, password string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	return scheme + "://" + url.UserPassword(user, password).String() + "@" + rest
}

// TestSecretsNeverShown is the secret test of issue 25: one unique secret
// for every flag, environment variable and connector config key that can
// carry one (sink URLs for PostgreSQL, password in user info and query, and
// Cassandra; metadata URLs; registry, source, Connect and metrics URLs;
// SASL, admin and viewer passwords; the dags command's password and token;
// Connect's connection.url, connection.password, auth.password and
// registry URL), then every command and page driven with them: --help,
// working runs and failing ones (unreachable servers, bad input), logs,
// errors, /metrics and /healthz, the web UI's pages and JSON twins,
// Airflow's REST API and run logs, Kafka Connect's answers and task
// traces. No output may hold any secret.
func TestSecretsNeverShown(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: no PostgreSQL to run the sinks and metadata stores against (make test starts one when PostgreSQL is installed)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := &secretBook{t: t, secrets: map[string]string{}}
	suffix := strings.ToLower(fmt.Sprintf("%x", time.Now().UnixNano()))
	sinkSchema, metaSchema, meta2Schema, connSchema := "sec_sink_"+suffix, "sec_meta_"+suffix, "sec_meta2_"+suffix, "sec_conn_"+suffix
	t.Cleanup(func() { dropSchemas(t, base, sinkSchema, metaSchema, meta2Schema, connSchema) })
	dead := proctest.FreeAddr(t) // nothing listens here

	// --help with every USERSTREAM_* variable that can carry a secret
	// set: a default shown in the usage must never be the variable's.
	helpEnv := []string{
		"USERSTREAM_SINK=" + withPassword(t, base, b.secret("USERSTREAM_SINK (help)"), false, sinkSchema),
		"USERSTREAM_METADATA=" + withPassword(t, base, b.secret("USERSTREAM_METADATA (help)"), true, metaSchema),
		"USERSTREAM_SCHEMA_REGISTRY=" + withUser("http://"+dead, "reg", b.secret("USERSTREAM_SCHEMA_REGISTRY (help)")),
		"USERSTREAM_SOURCE=" + withUser("http://"+dead+"/api/", "src", b.secret("USERSTREAM_SOURCE (help)")),
		"USERSTREAM_SASL_PASSWORD=" + b.secret("USERSTREAM_SASL_PASSWORD (help)"),
		"USERSTREAM_ADMIN_PASSWORD=" + b.secret("USERSTREAM_ADMIN_PASSWORD (help)"),
		"USERSTREAM_VIEWER_PASSWORD=" + b.secret("USERSTREAM_VIEWER_PASSWORD (help)"),
		"USERSTREAM_PASSWORD=" + b.secret("USERSTREAM_PASSWORD (help)"),
		"USERSTREAM_TOKEN=" + b.secret("USERSTREAM_TOKEN (help)"),
		"USERSTREAM_API=" + withUser("http://"+dead, "admin", b.secret("USERSTREAM_API (help)")),
		"USERSTREAM_CONNECT_URL=" + withUser("http://"+dead, "admin", b.secret("USERSTREAM_CONNECT_URL (help)")),
		"USERSTREAM_STREAM_METRICS=" + withUser("http://"+dead+"/metrics", "m", b.secret("USERSTREAM_STREAM_METRICS (help)")),
	}
	helps := 0
	for _, c := range newRoot(io.Discard, io.Discard).Commands() {
		for _, cmd := range append(c.Commands(), c) {
			args := append(strings.Fields(strings.TrimPrefix(cmd.CommandPath(), "userstream")), "--help")
			if out, _, code := b.run(ctx, helpEnv, args...); code != 0 || !strings.Contains(out, "Usage:") {
				t.Fatalf("userstream %s: exit %d:\n%s", strings.Join(args, " "), code, out)
			}
			helps++
		}
	}
	if helps < 12 {
		t.Fatalf("ran --help of %d commands, want every command", helps)
	}

	// Failures: unreachable servers and bad input; each error must
	// still say what failed, without the secret.
	s := startStack(t)
	reg := s.RegistryURL()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // in stderr
	}{
		{"cassandra sink unreachable", nil, []string{"users", "count", "--sink",
			"cassandra://cassandra:" + b.secret("--sink cassandra user info") + "@" + dead + "/spark_streams?connect_timeout=1s&timeout=1s&retries=0"}, "cassandra"},
		{"cassandra sink, password parameter", nil, []string{"stream", "--brokers", s.Kafka, "--metrics-addr", "", "--sink",
			"cassandra://" + dead + "/spark_streams?password=" + b.secret("--sink cassandra password parameter")}, "password"},
		{"cassandra sink from the environment", []string{"USERSTREAM_SINK=cassandra://c:" + b.secret("USERSTREAM_SINK cassandra") + "@" + dead + "/ks?connect_timeout=1s&timeout=1s&retries=0"},
			[]string{"users", "count"}, "cassandra"},
		{"postgres sink unreachable", nil, []string{"users", "count", "--sink",
			"postgres://u:" + b.secret("--sink postgres unreachable") + "@" + dead + "/db?connect_timeout=2&sslpassword=" + b.secret("--sink sslpassword")}, dead},
		{"postgres sink query that does not parse", nil, []string{"users", "count", "--sink",
			"postgres://u@" + dead + "/db?password=" + b.secret("--sink bad query") + "%zz"}, "do not parse"},
		{"postgres sink URL that does not parse", nil, []string{"users", "count", "--sink",
			"postgres://u:" + b.secret("--sink bad URL") + "@[::1/db"}, "does not parse"},
		{"metadata unreachable", nil, []string{"dags", "list", "--metadata",
			"postgres://u:" + b.secret("--metadata unreachable") + "@" + dead + "/db?connect_timeout=2"}, dead},
		{"metadata from the environment, unreachable", []string{"USERSTREAM_METADATA=postgres://u@" + dead + "/db?connect_timeout=2&password=" + b.secret("USERSTREAM_METADATA unreachable")},
			[]string{"dags", "list"}, dead},
		{"SASL refused", nil, []string{"topics", "list", "--brokers", s.Kafka, "--sasl-mechanism", "PLAIN", "--sasl-user", "u",
			"--sasl-password", b.secret("--sasl-password")}, "Kafka"},
		{"SASL from the environment", []string{"USERSTREAM_SASL_PASSWORD=" + b.secret("USERSTREAM_SASL_PASSWORD")},
			[]string{"stream", "--brokers", s.Kafka, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "u", "--metrics-addr", ""}, "Kafka"},
		{"SASL password without a mechanism", nil, []string{"topics", "list", "--brokers", s.Kafka, "--sasl-password", b.secret("--sasl-password alone")}, "--sasl"},
		{"registry unreachable", nil, []string{"produce", "--brokers", s.Kafka, "--users", "1", "--schema-registry",
			withUser("http://"+dead, "reg", b.secret("--schema-registry unreachable"))}, "egistry"},
		{"registry URL that does not parse", nil, []string{"produce", "--brokers", s.Kafka, "--users", "1", "--schema-registry",
			"http://reg:" + b.secret("--schema-registry bad URL") + "@[::1"}, "--schema-registry"},
		{"source unreachable", nil, []string{"produce", "--brokers", s.Kafka, "--schema-registry", "none", "--users", "1", "--request-retries", "0", "--source",
			withUser("http://"+dead+"/api/?api_key="+b.secret("--source api_key unreachable"), "src", b.secret("--source unreachable"))}, dead},
		{"source that is not http", []string{"USERSTREAM_SOURCE=ftp://src:" + b.secret("USERSTREAM_SOURCE not http") + "@" + dead + "/api/"},
			[]string{"produce", "--brokers", s.Kafka, "--schema-registry", "none", "--users", "1"}, "--source"},
		{"metrics URL that does not parse", nil, []string{"web", "--metadata", "sqlite:" + t.TempDir() + "/m.db", "--admin-password", b.secret("--admin-password (web failing)"),
			"--stream-metrics", "http://m:" + b.secret("--stream-metrics bad") + "@[::1/metrics"}, "--stream-metrics"},
		{"connect URL that is not http", nil, []string{"web", "--connect-url", "ftp://admin:" + b.secret("--connect-url not http") + "@" + dead}, "--connect-url"},
		{"dags API refuses a wrong password", nil, []string{"dags", "list", "--api", "http://" + dead, "--password", b.secret("dags --password")}, dead},
		{"dags API with a token", []string{"USERSTREAM_TOKEN=" + b.secret("USERSTREAM_TOKEN")}, []string{"dags", "list", "--api", withUser("http://"+dead, "admin", b.secret("dags --api user info"))}, dead},
		{"flag value that does not parse", nil, []string{"stream", "--sink", "postgres://u:" + b.secret("--sink beside a bad flag") + "@h/db", "--batch-size", "many"}, "batch-size"},
	} {
		rctx, rcancel := context.WithTimeout(ctx, 90*time.Second)
		_, errOut, code := b.run(rctx, tc.env, tc.args...)
		rcancel()
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want a failure saying %q:\n%s", tc.name, code, tc.want, errOut)
		}
	}

	// Stream workers on PostgreSQL, one configured by flags, one by the
	// environment: the example (a password parameter) among them.
	m1, m2 := proctest.FreeAddr(t), proctest.FreeAddr(t)
	st1 := b.start("stream-flags", nil, "stream", "--brokers", s.Kafka, "--metrics-addr", m1, "--batch-size", "50",
		"--sink", withPassword(t, base, b.secret("--sink postgres user info"), false, sinkSchema),
		"--schema-registry", withUser(reg, "reg", b.secret("--schema-registry")))
	b.waitOutput(st1, "stream started")
	st2 := b.start("stream-env", []string{
		"USERSTREAM_SINK=" + withPassword(t, base, b.secret("USERSTREAM_SINK postgres password parameter"), true, sinkSchema),
		"USERSTREAM_SCHEMA_REGISTRY=" + withUser(reg, "reg", b.secret("USERSTREAM_SCHEMA_REGISTRY")),
	}, "stream", "--brokers", s.Kafka, "--metrics-addr", m2)
	b.waitOutput(st2, "stream started")
	if out := st2.Output(); !strings.Contains(out, "password=xxxxx") {
		t.Errorf("the stream's start line does not show its sink with the password hidden:\n%s", out)
	}

	// Producers: source and registry URLs with secrets, by flag and by
	// environment.
	if _, errOut, code := b.run(ctx, nil, "produce", "--brokers", s.Kafka, "--users", "40",
		"--schema-registry", withUser(reg, "reg", b.secret("--schema-registry (produce)")),
		"--source", withUser(s.SourceURL()+"?api_key="+b.secret("--source api_key"), "src", b.secret("--source"))); code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	if _, errOut, code := b.run(ctx, []string{
		"USERSTREAM_SOURCE=" + withUser(s.SourceURL()+"?access_token="+b.secret("USERSTREAM_SOURCE access_token"), "src", b.secret("USERSTREAM_SOURCE")),
		"USERSTREAM_SCHEMA_REGISTRY=" + withUser(reg, "reg", b.secret("USERSTREAM_SCHEMA_REGISTRY (produce)")),
	}, "produce", "--brokers", s.Kafka, "--users", "40"); code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	sinkForCount := withPassword(t, base, b.secret("--sink (users count)"), false, sinkSchema)
	testwait.For(t, 60*time.Second, "the streams to store the 80 users", func() (string, bool) {
		out, errOut, _ := b.run(ctx, nil, "users", "count", "--sink", sinkForCount)
		return out + errOut, strings.TrimSpace(out) == "80"
	}, testwait.Every(300*time.Millisecond))
	b.run(ctx, []string{"USERSTREAM_SINK=" + withPassword(t, base, b.secret("USERSTREAM_SINK (users recent)"), true, sinkSchema)}, "users", "recent", "3")
	for _, m := range []string{m1, m2} {
		b.http(nil, "GET", "http://"+m+"/metrics", "", "", nil)
		b.http(nil, "GET", "http://"+m+"/healthz", "", "", nil)
	}

	// The scheduler with a PostgreSQL metadata store and its REST API:
	// admin and viewer passwords by flag, then by the environment.
	schedAddr := proctest.FreeAddr(t)
	adminPW := b.secret("--admin-password (scheduler)")
	sch := b.start("scheduler-flags", nil, "scheduler", "--brokers", s.Kafka, "--addr", schedAddr, "--schedule", "none", "--users-per-run", "20",
		"--metadata", withPassword(t, base, b.secret("--metadata user info"), false, metaSchema),
		"--admin-password", adminPW, "--viewer-password", b.secret("--viewer-password"),
		"--schema-registry", withUser(reg, "reg", b.secret("--schema-registry (scheduler)")),
		"--source", withUser(s.SourceURL()+"?token="+b.secret("--source token (scheduler)"), "src", b.secret("--source (scheduler)")))
	b.waitOutput(sch, "scheduler started")
	api := "http://" + schedAddr
	if code, body := b.http(nil, "POST", api+"/api/v1/dags/user_automation/dagRuns", "admin", adminPW, map[string]any{}); code != 200 {
		t.Fatalf("trigger a run: %d %s", code, body)
	}
	if _, errOut, code := b.run(ctx, nil, "dags", "list", "--api", api, "--password", b.secret("dags --password (refused)")); code == 0 {
		t.Errorf("dags list with a wrong password succeeded: %s", errOut)
	}
	// USERSTREAM_ADMIN_PASSWORD is the dags command's password by default.
	dagsEnv := []string{"USERSTREAM_ADMIN_PASSWORD=" + adminPW}
	runID := testwait.For(t, 90*time.Second, "the triggered run to succeed", func() (string, bool) {
		out, _, _ := b.run(ctx, dagsEnv, "dags", "runs", "user_automation", "--api", api)
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[2] == "success" && strings.HasPrefix(f[1], "manual__") {
				return f[1], true
			}
		}
		return out, false
	}, testwait.Every(500*time.Millisecond))
	if out, errOut, code := b.run(ctx, dagsEnv, "dags", "logs", runID, "--api", api); code != 0 || out == "" {
		t.Errorf("dags logs: exit %d: %s", code, errOut)
	}
	b.run(ctx, nil, "dags", "list", "--metadata", withPassword(t, base, b.secret("--metadata (dags)"), true, metaSchema))
	b.http(nil, "GET", api+"/api/v1/dags", "admin", adminPW, nil)
	b.http(nil, "GET", api+"/api/v1/dags/user_automation/dagRuns", "admin", adminPW, nil)
	b.http(nil, "GET", api+"/metrics", "", "", nil)
	b.http(nil, "GET", api+"/api/v1/health", "", "", nil)
	sch.Kill(t)

	schedAddr2 := proctest.FreeAddr(t)
	adminEnv := b.secret("USERSTREAM_ADMIN_PASSWORD (scheduler)")
	sch2 := b.start("scheduler-env", []string{
		"USERSTREAM_METADATA=" + withPassword(t, base, b.secret("USERSTREAM_METADATA password parameter"), true, meta2Schema),
		"USERSTREAM_ADMIN_PASSWORD=" + adminEnv, "USERSTREAM_VIEWER_PASSWORD=" + b.secret("USERSTREAM_VIEWER_PASSWORD"),
	}, "scheduler", "--brokers", s.Kafka, "--addr", schedAddr2, "--schedule", "none", "--schema-registry", "none")
	b.waitOutput(sch2, "scheduler started")
	if code, body := b.http(nil, "GET", "http://"+schedAddr2+"/api/v1/dags", "admin", adminEnv, nil); code != 200 {
		t.Errorf("the admin password from USERSTREAM_ADMIN_PASSWORD was not the admin's: %d %s", code, body)
	}
	sch2.Kill(t)

	// A Kafka Connect worker with connectors whose configs carry secrets:
	// a JDBC one on PostgreSQL (working) and a Cassandra one (unreachable,
	// so its task fails and its trace is shown).
	connAddr := proctest.FreeAddr(t)
	connAdmin := b.secret("--admin-password (connect)")
	cw := b.start("connect", nil, "connect", "--brokers", s.Kafka, "--addr", connAddr, "--task-failed-after", "2s",
		"--metadata", withPassword(t, base, b.secret("--metadata (connect)"), false, connSchema),
		"--admin-password", connAdmin, "--schema-registry", withUser(reg, "reg", b.secret("--schema-registry (connect)")))
	b.waitOutput(cw, "connect worker started")
	cu := "http://" + connAddr
	jdbc := map[string]string{
		"connector.class": kconnect.ClassJDBC, "tasks.max": "1", "topics": broker.Topic,
		"connection.url":                      "jdbc:postgresql://" + pgHost(t, base) + "?user=" + pgUser(t, base) + "&sslmode=disable&schema=" + sinkSchema + "&password=" + b.secret("connection.url password parameter"),
		"connection.password":                 b.secret("connection.password"),
		"value.converter.schema.registry.url": withUser(reg, "reg", b.secret("value.converter.schema.registry.url")),
	}
	_, port, _ := strings.Cut(dead, ":")
	cass := map[string]string{
		"connector.class": kconnect.ClassCassandra, "tasks.max": "1", "topics": broker.Topic,
		"contactPoints": "127.0.0.1", "port": port, "loadBalancing.localDc": "datacenter1",
		"auth.username": "cassandra", "auth.password": b.secret("auth.password"),
		"topic.users_created.spark_streams.created_users.mapping": "id=value.id, first_name=value.first_name",
	}
	jdbcURLOnly := map[string]string{
		"connector.class": kconnect.ClassJDBC, "tasks.max": "1", "topics": broker.Topic,
		"connection.url": "jdbc:postgresql://" + pgUser(t, base) + ":" + b.secret("connection.url user info") + "@" + dead + "/db?connect_timeout=1",
	}
	for name, cfg := range map[string]map[string]string{"sec-jdbc": jdbc, "sec-cass": cass, "sec-jdbc-dead": jdbcURLOnly} {
		if code, body := b.http(nil, "PUT", cu+"/connectors/"+name+"/config", "admin", connAdmin, cfg); code != 201 && code != 200 {
			t.Fatalf("create connector %s: %d %s", name, code, body)
		}
		b.http(nil, "PUT", cu+"/connector-plugins/"+url.PathEscape(cfg["connector.class"])+"/config/validate", "", "", cfg)
	}
	for _, name := range []string{"sec-cass", "sec-jdbc-dead"} {
		testwait.For(t, 90*time.Second, name+"'s task to fail", func() (string, bool) {
			_, body := b.http(nil, "GET", cu+"/connectors/"+name+"/status", "", "", nil)
			return body, strings.Contains(body, `"FAILED"`) && strings.Contains(body, "trace")
		}, testwait.Every(500*time.Millisecond))
	}
	for _, name := range []string{"sec-jdbc", "sec-cass", "sec-jdbc-dead"} {
		_, body := b.http(nil, "GET", cu+"/connectors/"+name+"/config", "", "", nil)
		if !strings.Contains(body, redact.Hidden) && !strings.Contains(body, redact.Mask) {
			t.Errorf("connector %s's config shows no %s or %s: %s", name, redact.Hidden, redact.Mask, body)
		}
		b.http(nil, "GET", cu+"/connectors/"+name, "", "", nil)
		b.http(nil, "GET", cu+"/connectors/"+name+"/tasks", "", "", nil)
		b.http(nil, "GET", cu+"/connectors/"+name+"/topics", "", "", nil)
	}
	if _, body := b.http(nil, "GET", cu+"/connectors/sec-cass/config", "", "", nil); !strings.Contains(body, `"auth.username":"cassandra"`) {
		t.Errorf("sec-cass's config hides more than its secrets: %s", body)
	}
	b.http(nil, "GET", cu+"/connectors?expand=info&expand=status", "", "", nil)
	// A config PUT back as it was shown keeps the secret: the connector
	// still stores what it did.
	_, shown := b.http(nil, "GET", cu+"/connectors/sec-jdbc/config", "", "", nil)
	var back map[string]string
	if err := json.Unmarshal([]byte(shown), &back); err != nil {
		t.Fatalf("config of sec-jdbc: %v: %s", err, shown)
	}
	if code, body := b.http(nil, "PUT", cu+"/connectors/sec-jdbc/config", "admin", connAdmin, back); code != 200 {
		t.Fatalf("PUT the shown config back: %d %s", code, body)
	}

	// The web UI over all of it: every page and JSON twin, by flags, then
	// by the environment.
	webAddr, webAdmin := proctest.FreeAddr(t), b.secret("--admin-password (web)")
	web := b.start("web-flags", nil, "web", "--brokers", s.Kafka, "--addr", webAddr,
		"--sink", withPassword(t, base, b.secret("--sink (web)"), false, sinkSchema),
		"--metadata", withPassword(t, base, b.secret("--metadata (web)"), true, connSchema),
		"--schema-registry", withUser(reg, "reg", b.secret("--schema-registry (web)")),
		"--connect-url", withUser(cu, "admin", b.secret("--connect-url")),
		"--stream-metrics", withUser("http://"+m1+"/metrics", "m", b.secret("--stream-metrics"))+","+
			withUser("http://"+dead+"/metrics?token="+b.secret("--stream-metrics token"), "m", b.secret("--stream-metrics (unreachable)")),
		"--admin-password", webAdmin,
		"--viewer-password", b.secret("--viewer-password (web)"))
	proctest.WaitListening(t, web, webAddr)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 30 * time.Second, Jar: jar}
	wu := "http://" + webAddr
	form := url.Values{"username": {"admin"}, "password": {webAdmin}, "next": {"/"}}
	resp, err := browser.PostForm(wu+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("log in: %s", resp.Status)
	}
	pages := []string{"/", "/topics", "/topics/" + broker.Topic, "/topics/" + broker.Topic + "/messages", "/groups", "/groups/userstream-stream",
		"/topics/" + kconnect.DefaultConfigTopic + "/messages", "/topics/" + kconnect.DefaultConfigTopic + "/export?format=json",
		"/topics/" + kconnect.DefaultStatusTopic + "/messages",
		"/schemas", "/schemas/" + broker.Topic + "-value", "/connect", "/connect/sec-jdbc", "/connect/sec-cass", "/connect/sec-jdbc-dead",
		"/dags", "/users"}
	for _, p := range pages {
		if code, body := b.http(browser, "GET", wu+p, "", "", nil); code != 200 && code != 404 {
			t.Errorf("GET %s: %d %s", p, code, proctest.Tail(body, 500))
		}
		twin := "/api/ui" + strings.TrimSuffix(p, "/")
		if code, body := b.http(nil, "GET", wu+twin, "admin", webAdmin, nil); code != 200 && code != 404 {
			t.Errorf("GET %s: %d %s", twin, code, proctest.Tail(body, 500))
		}
	}
	_, page := b.http(browser, "GET", wu+"/connect/sec-jdbc", "", "", nil)
	if !strings.Contains(page, redact.Hidden) || !strings.Contains(page, "connection.password") {
		t.Errorf("the connector page does not show connection.password as %s:\n%s", redact.Hidden, proctest.Tail(page, 3000))
	}
	web.Kill(t)

	webAddr2, web2Admin := proctest.FreeAddr(t), b.secret("USERSTREAM_ADMIN_PASSWORD (web)")
	web2 := b.start("web-env", []string{
		"USERSTREAM_SINK=" + withPassword(t, base, b.secret("USERSTREAM_SINK (web)"), true, sinkSchema),
		"USERSTREAM_METADATA=" + withPassword(t, base, b.secret("USERSTREAM_METADATA (web)"), false, connSchema),
		"USERSTREAM_SCHEMA_REGISTRY=" + withUser(reg, "reg", b.secret("USERSTREAM_SCHEMA_REGISTRY (web)")),
		"USERSTREAM_CONNECT_URL=" + withUser(cu, "admin", b.secret("USERSTREAM_CONNECT_URL")),
		"USERSTREAM_STREAM_METRICS=" + withUser("http://"+dead+"/metrics", "m", b.secret("USERSTREAM_STREAM_METRICS")),
		"USERSTREAM_ADMIN_PASSWORD=" + web2Admin,
	}, "web", "--brokers", s.Kafka, "--addr", webAddr2)
	proctest.WaitListening(t, web2, webAddr2)
	for _, p := range []string{"/api/ui", "/api/ui/connect", "/api/ui/connect/sec-cass", "/api/ui/users"} {
		if code, body := b.http(nil, "GET", "http://"+webAddr2+p, "admin", web2Admin, nil); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, proctest.Tail(body, 500))
		}
	}

	// dev: a password the user gives is never printed (only a generated
	// one is, once).
	devWeb, devAdmin := proctest.FreeAddr(t), b.secret("USERSTREAM_ADMIN_PASSWORD (dev)")
	dev := b.start("dev", []string{"USERSTREAM_ADMIN_PASSWORD=" + devAdmin, "USERSTREAM_VIEWER_PASSWORD=" + b.secret("USERSTREAM_VIEWER_PASSWORD (dev)"),
		"USERSTREAM_SCHEMA_REGISTRY=" + withUser(reg, "reg", b.secret("USERSTREAM_SCHEMA_REGISTRY (dev)"))},
		"dev", "--data-dir", t.TempDir(), "--kafka-addr", proctest.FreeAddr(t), "--api-addr", proctest.FreeAddr(t),
		"--registry-addr", proctest.FreeAddr(t), "--web-addr", devWeb, "--metrics-addr", proctest.FreeAddr(t), "--connect-addr", proctest.FreeAddr(t))
	proctest.WaitListening(t, dev, devWeb)
	testwait.For(t, 60*time.Second, "dev's API to take USERSTREAM_ADMIN_PASSWORD", func() (string, bool) {
		code, body := b.http(nil, "GET", "http://"+devWeb+"/api/v1/dags", "admin", devAdmin, nil)
		return fmt.Sprint(code, " ", body), code == 200
	}, testwait.Every(200*time.Millisecond))

	b.check()
	if got := len(b.secrets); got < 60 {
		t.Errorf("%d secrets fed, want one per carrier (60 or more)", got)
	}
	if !t.Failed() {
		t.Logf("%d secrets, %d outputs, none holds a secret", len(b.secrets), len(b.outputs))
	}
}

// pgHost is host:port/db of a libpq URL.
func pgHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host + u.Path
}

// pgUser is the user name of a libpq URL.
func pgUser(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.User.Username()
}

// dropSchemas drops the test's schemas.
func dropSchemas(t *testing.T, base string, schemas ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Logf("drop the test's schemas: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, s := range schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", s, err)
		}
	}
}
