package connect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/user"
)

const (
	testUser, testPassword = "admin", "s3cret"
)

// startBroker starts the broker of USERSTREAM_TEST_BROKER's kind (the
// embedded one by default, else a real Apache Kafka node) with
// users_created and its DLQ of 3 partitions, and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	if kind := enginestest.BrokerKind(t); kind != enginestest.Embedded {
		k := enginestest.StartKafka(t, enginestest.KafkaOptions(kind)...)
		ensureUserTopics(t, k.Brokers)
		return k.Bootstrap()
	}
	e, err := broker.StartEmbedded(t.Context(), "127.0.0.1:0", "", broker.WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e.Addr()
}

// ensureUserTopics creates users_created and its DLQ, of 3 partitions, on
// a real Kafka cluster.
func ensureUserTopics(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := broker.EnsureTopics(t.Context(), kadm.NewClient(cl), 3, -1, broker.Topic, broker.DLQTopic); err != nil {
		t.Fatal(err)
	}
}

// cluster is one worker and its REST API.
type worker struct {
	w      *connect.Worker
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t *testing.T, addr, id string) *worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := connect.NewWorker(ctx, connect.WorkerConfig{
		WorkerID: id,
		Dial: func(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
			return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
		},
		OpenSink: func(ctx context.Context, url string) (stream.Sink, func() error, error) {
			s, err := sinks.Open(ctx, url)
			if err != nil {
				return nil, nil, err
			}
			return s, s.Close, nil
		},
		Decoder: func(ctx context.Context, s connect.Spec) (stream.Decoder, error) {
			if !s.JSON {
				return nil, errors.New("no registry in this test")
			}
			return user.JSON{}, nil
		},
		FailAfter:      10 * time.Second,
		SessionTimeout: 6 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	srv := httptest.NewServer(connect.Handler(w, func(r *http.Request) error {
		if u, p, ok := r.BasicAuth(); ok && u == testUser && p == testPassword {
			return nil
		}
		return errors.New("authentication required")
	}))
	wk := &worker{w: w, url: srv.URL, cancel: cancel, done: done}
	t.Cleanup(func() {
		srv.Close()
		wk.stop(t)
	})
	return wk
}

func (w *worker) stop(t *testing.T) {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("worker did not stop")
	}
}

// call does one REST call and decodes the answer into out (when not nil).
func call(t *testing.T, base, method, path string, auth bool, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth(testUser, testPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func expectCode(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

// sinkURL is the JDBC URL of a fresh PostgreSQL schema when
// USERSTREAM_TEST_POSTGRES is set, else of a SQLite file, and the sinks.Open
// URL that reads it.
func sinkURL(t *testing.T) (jdbc, open string) {
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Log("USERSTREAM_TEST_POSTGRES is not set: the JDBC connector writes SQLite")
		// Under a directory TestMain removes, for the reason below: a
		// t.TempDir would be removed while the worker still writes it.
		d, err := os.MkdirTemp(sqliteRoot, "sink-")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "users.db")
		return "jdbc:sqlite:" + p, "sqlite:" + p
	}
	// Dropped by TestMain once every worker has stopped: a test's own
	// cleanup would drop it under the feet of its worker, whose cleanup
	// runs later (cleanups run last registered first).
	schema := fmt.Sprintf("connect_%d", time.Now().UnixNano())
	url := base + "&schema=" + schema
	if !strings.Contains(base, "?") {
		url = base + "?schema=" + schema
	}
	return "jdbc:" + strings.Replace(url, "postgres://", "postgresql://", 1), url
}

func produceUsers(t *testing.T, addr string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(broker.Topic), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, r := range sinktest.Records(from, n) {
		b, _ := json.Marshal(r)
		rs = append(rs, &kgo.Record{Key: []byte(r.ID), Value: b})
	}
	if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, url string) int64 {
	t.Helper()
	s, err := sinks.Open(t.Context(), url, sinks.ReadOnly())
	if errors.Is(err, sink.ErrNoTable) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Count(t.Context())
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" || errors.Is(err, sink.ErrNoTable) {
		// The task's sink is between its migrations (created_users is
		// there, user_counts not yet): nothing stored yet.
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func jdbcConfig(url string) map[string]string {
	return map[string]string{
		"connector.class": connect.ClassJDBC, "tasks.max": "2", "topics": broker.Topic,
		"connection.url": url, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
		"table.name.format": connect.Table, "auto.create": "true",
		"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}
}

func TestJDBCConnectorLifecycle(t *testing.T) {
	addr := startBroker(t)
	wk := startWorker(t, addr, "worker-1:8083")
	base := wk.url
	jdbc, open := sinkURL(t)

	var root map[string]string
	expectCode(t, "GET /", call(t, base, "GET", "/", false, nil, &root), 200)
	if root["version"] == "" {
		t.Fatalf("GET / = %v, want a version", root)
	}
	var plugins []connect.Plugin
	expectCode(t, "GET /connector-plugins", call(t, base, "GET", "/connector-plugins", false, nil, &plugins), 200)
	if len(plugins) != 2 {
		t.Fatalf("plugins = %v", plugins)
	}

	// A bad config: refused by validate and by create, the key named.
	bad := jdbcConfig(jdbc)
	bad["insert.mode"] = "insert"
	bad["name"] = "pg"
	var vi connect.ConfigInfos
	expectCode(t, "validate", call(t, base, "PUT", "/connector-plugins/JdbcSinkConnector/config/validate", false, bad, &vi), 200)
	if vi.ErrorCount != 1 || len(vi.Errors()) != 1 || !strings.HasPrefix(vi.Errors()[0], "insert.mode: ") {
		t.Fatalf("validate: %d errors %v, want one naming insert.mode", vi.ErrorCount, vi.Errors())
	}
	var apiErr struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	expectCode(t, "create without auth", call(t, base, "POST", "/connectors", false, map[string]any{"name": "pg", "config": jdbcConfig(jdbc)}, &apiErr), 401)
	expectCode(t, "create bad", call(t, base, "POST", "/connectors", true, map[string]any{"name": "pg", "config": bad}, &apiErr), 400)
	if apiErr.Code != 400 || !strings.Contains(apiErr.Message, "insert.mode") {
		t.Fatalf("create bad: %+v, want the key named", apiErr)
	}
	delete(bad, "insert.mode")
	bad["delete.enabled"] = "true"
	expectCode(t, "create unknown key", call(t, base, "POST", "/connectors", true, map[string]any{"name": "pg", "config": bad}, &apiErr), 400)
	if !strings.Contains(apiErr.Message, "delete.enabled") {
		t.Fatalf("create unknown key: %+v, want the key named", apiErr)
	}
	expectCode(t, "unknown connector", call(t, base, "GET", "/connectors/pg", false, nil, &apiErr), 404)
	if apiErr.Code != 404 {
		t.Fatalf("404 body: %+v", apiErr)
	}

	var info struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
		Tasks  []map[string]any  `json:"tasks"`
	}
	expectCode(t, "create", call(t, base, "POST", "/connectors", true, map[string]any{"name": "pg", "config": jdbcConfig(jdbc)}, &info), 201)
	if info.Name != "pg" || info.Config["connection.url"] != jdbc {
		t.Fatalf("create: %+v", info)
	}
	expectCode(t, "create again", call(t, base, "POST", "/connectors", true, map[string]any{"name": "pg", "config": jdbcConfig(jdbc)}, &apiErr), 409)

	produceUsers(t, addr, 0, 10000)
	testwait.For(t, 60*time.Second, "10000 users", func() (int64, bool) { n := count(t, open); return n, n == 10000 })

	var st connect.Status
	expectCode(t, "status", call(t, base, "GET", "/connectors/pg/status", false, nil, &st), 200)
	if st.Connector.State != connect.StateRunning || len(st.Tasks) != 2 {
		t.Fatalf("status = %+v, want RUNNING with 2 tasks", st)
	}
	for _, ts := range st.Tasks {
		if ts.State != connect.StateRunning || ts.WorkerID != "worker-1:8083" {
			t.Fatalf("task %+v, want RUNNING on worker-1:8083", ts)
		}
	}
	var ts connect.TaskState
	expectCode(t, "task status", call(t, base, "GET", "/connectors/pg/tasks/1/status", false, nil, &ts), 200)
	expectCode(t, "missing task", call(t, base, "GET", "/connectors/pg/tasks/7/status", false, nil, &apiErr), 404)
	var topics map[string]map[string][]string
	expectCode(t, "topics", call(t, base, "GET", "/connectors/pg/topics", false, nil, &topics), 200)
	if got := topics["pg"]["topics"]; len(got) != 1 || got[0] != broker.Topic {
		t.Fatalf("topics = %v", topics)
	}

	// Pause: the count stops growing while produce goes on.
	// A task is reported PAUSED once it has stopped, so the count read
	// then is final; the window after the produce is where a running task
	// would write.
	expectCode(t, "pause", call(t, base, "PUT", "/connectors/pg/pause", true, nil, nil), 202)
	testwait.For(t, 20*time.Second, "the connector and its tasks PAUSED", func() (connect.Status, bool) {
		st = connect.Status{}
		expectCode(t, "status", call(t, base, "GET", "/connectors/pg/status", false, nil, &st), 200)
		return st, st.Connector.State == connect.StatePaused && len(st.Tasks) == 2 &&
			st.Tasks[0].State == connect.StatePaused && st.Tasks[1].State == connect.StatePaused
	})
	paused := count(t, open)
	produceUsers(t, addr, 10000, 10000)
	testwait.Holds(t, 2*time.Second, fmt.Sprintf("the paused connector's count at %d", paused), func() (int64, bool) {
		n := count(t, open)
		return n, n == paused
	}, testwait.Every(200*time.Millisecond))
	// Offsets may change only while stopped.
	expectCode(t, "reset offsets while paused", call(t, base, "DELETE", "/connectors/pg/offsets", true, nil, &apiErr), 400)

	expectCode(t, "resume", call(t, base, "PUT", "/connectors/pg/resume", true, nil, nil), 202)
	testwait.For(t, 90*time.Second, "20000 users", func() (int64, bool) { n := count(t, open); return n, n == 20000 })
	var offs struct {
		Offsets []connect.Offset `json:"offsets"`
	}
	testwait.For(t, 30*time.Second, "offsets at 20000", func() (int64, bool) {
		expectCode(t, "offsets", call(t, base, "GET", "/connectors/pg/offsets", false, nil, &offs), 200)
		var sum int64
		for _, o := range offs.Offsets {
			sum += o.Offset.Offset
		}
		return sum, sum == 20000
	})
	if n := count(t, open); n != 20000 {
		t.Fatalf("count = %d after catching up, want 20000", n)
	}

	// Delete: the config goes and the tasks leave the group.
	expectCode(t, "delete without auth", call(t, base, "DELETE", "/connectors/pg", false, nil, nil), 401)
	expectCode(t, "delete", call(t, base, "DELETE", "/connectors/pg", true, nil, nil), 204)
	expectCode(t, "deleted", call(t, base, "GET", "/connectors/pg", false, nil, &apiErr), 404)
	var names []string
	expectCode(t, "list", call(t, base, "GET", "/connectors", false, nil, &names), 200)
	if len(names) != 0 {
		t.Fatalf("connectors = %v after delete", names)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gs, err := kadm.NewClient(cl).DescribeGroups(t.Context(), connect.GroupOf("pg"))
	if err != nil {
		t.Fatal(err)
	}
	if g := gs[connect.GroupOf("pg")]; len(g.Members) != 0 {
		t.Fatalf("group %s still has %d members after delete", connect.GroupOf("pg"), len(g.Members))
	}
}

// TestMain drops the schemas the tests made (sinkURL) when they are all
// done, and any a killed run left.
// sqliteRoot holds the SQLite sinks of the tests (sinkURL) until every
// worker has stopped.
var sqliteRoot string

func TestMain(m *testing.M) {
	var err error
	if sqliteRoot, err = os.MkdirTemp("", "userstream-connect-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := enginestest.RunWithCassandra(m)
	os.RemoveAll(sqliteRoot)
	if base := os.Getenv("USERSTREAM_TEST_POSTGRES"); base != "" {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			rows, _ := conn.Query(ctx, `SELECT schema_name FROM information_schema.schemata WHERE schema_name ~ '^connect_[0-9]+$'`)
			names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, n := range names {
				conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{n}.Sanitize()+" CASCADE")
			}
			conn.Close(ctx)
		}
	}
	os.Exit(code)
}

// TestStopWithBrokerGone: a worker whose broker has gone still stops when
// asked (SIGTERM in `userstream connect`), within the bound of its last
// status write, rather than retrying that write for as long as the broker
// stays away (an idempotent produce cannot be cancelled by its context).
func TestStopWithBrokerGone(t *testing.T) {
	e, err := broker.StartEmbedded(t.Context(), "127.0.0.1:0", "", broker.WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	wk := startWorker(t, e.Addr(), "worker-1:8083")
	jdbc, open := sinkURL(t)
	expectCode(t, "create", call(t, wk.url, "POST", "/connectors", true, map[string]any{"name": "pg", "config": jdbcConfig(jdbc)}, nil), 201)
	produceUsers(t, e.Addr(), 0, 100)
	testwait.For(t, 60*time.Second, "100 users", func() (int64, bool) { n := count(t, open); return n, n == 100 })
	e.Close()
	wk.cancel()
	wk.cancel = nil
	testwait.For(t, 30*time.Second, "the worker to stop with its broker gone", func() (string, bool) {
		select {
		case err := <-wk.done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
			return "stopped", true
		default:
			return "still running", false
		}
	}, testwait.Every(50*time.Millisecond))
}
