package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/compat/spark"
	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/sink/postgres"
)

const (
	schemaTopic   = "users_created_schema" // the users in JSON with schemas, for Debezium
	peersPassword = "peers-admin-password" // our worker's admin login, for this run only
	debeziumClass = "io.debezium.connector.jdbc.JdbcSinkConnector"
)

// TestConnectSink: our Connect worker's JDBC sink (`userstream connect`,
// io.confluent.connect.jdbc.JdbcSinkConnector into PostgreSQL) and Apache
// Kafka Connect 4.3.1's distributed worker running Debezium's JDBC sink
// 3.6.0 (poms/connect-debezium.xml), both on Apache Kafka, each upserting
// by id into a created_users of the same shape (our sink's migrations make
// both tables), with tasks.max 1 and then 2, from the earliest offset of a
// topic of USERSTREAM_PEERS_USERS users (200,000; 5,000 quick): rows/s from
// the first row to the last, and the peak RSS of each worker over both
// runs. The users are the same; the topics differ in form: ours reads the
// plain JSON users_created (our worker takes JSON without schemas only),
// Debezium users_created_schema, the same records (key, partition,
// order) wrapped in JsonConverter's schema envelope, as it needs a schema
// and Confluent's Avro converter is not on Maven Central.
func TestConnectSink(t *testing.T) {
	quick := measured(t)
	pg := spark.PostgresURL(t)
	n := size(t, "USERSTREAM_PEERS_USERS", quick, 200000, 5000)
	kafka := sharedKafka(t)
	produceJSON(t, kafka, n, 0)
	want := copyWithSchemas(t, kafka)

	// Ours.
	dir := t.TempDir()
	addr := proctest.FreeAddr(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ours := proctest.StartEnv(t, "connect", []string{"USERSTREAM_ADMIN_PASSWORD=" + peersPassword}, "connect",
		"--brokers", kafka, "--addr", addr, "--group-id", "peers-ours-"+suffix, "--schema-registry", "none",
		"--metadata", "sqlite:"+filepath.Join(dir, "meta.db"),
		"--config-storage-topic", "peers-ours-configs-"+suffix, "--status-storage-topic", "peers-ours-status-"+suffix)
	proctest.WaitListening(t, ours, addr)
	oursPeak := rssWatch(func() []int { return []int{ours.Pid()} })
	t.Cleanup(func() { oursPeak() })

	// The peer, with its JVM's defaults (no QuickStartJVM: a measurement).
	jvm, err := engines.StartConnect(t.Context(), t.TempDir(), kafka, engines.WithConnectPlugins("connect-debezium"),
		engines.WithConnectGroup("peers-jvm-"+suffix), engines.WithStartTimeout(5*time.Minute))
	if err != nil {
		t.Fatalf("start Apache Kafka Connect: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- JVM Connect log:\n%s", jvm.Process().LogTail(4000))
		}
		_ = jvm.Close()
	})
	jvmPeak := rssWatch(func() []int { return []int{jvm.Process().Pid} })
	t.Cleanup(func() { jvmPeak() })

	jdbc, user, pass, err := spark.JDBC(pg)
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]float64{}
	for _, tasks := range []int{1, 2} {
		for _, who := range []string{"ours", "Debezium"} {
			schema := spark.CreateSchema(t, pg)
			migrate(t, withParam(pg, "schema="+schema))
			name := fmt.Sprintf("peers-%s-%d-%s", map[string]string{"ours": "ours", "Debezium": "dbz"}[who], tasks, suffix)
			var url, login string
			var cfg map[string]string
			if who == "ours" {
				url, login = "http://"+addr, "admin:"+peersPassword
				cfg = map[string]string{"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
					"topics": spark.Topic, "connection.url": oursJDBC(t, jdbc, schema),
					"connection.user": user, "connection.password": pass,
					"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id", "table.name.format": "created_users"}
			} else {
				url = jvm.URL
				cfg = map[string]string{"connector.class": debeziumClass, "topics": schemaTopic,
					"connection.url":      jdbc,
					"connection.username": user, "connection.password": pass,
					// Hibernate's own pool: Debezium's default, Agroal, needs a
					// hibernate-agroal 7.2.6 Maven Central does not serve (7.1.4
					// fails on 7.2's core).
					"connection.provider": "org.hibernate.engine.jdbc.connections.internal.DriverManagerConnectionProvider",
					"insert.mode":         "upsert", "primary.key.mode": "record_value", "primary.key.fields": "id",
					// Qualified: Debezium looks a bare name up in every schema
					// (currentSchema aside) and took the other side's table.
					"collection.name.format": schema + ".created_users", "schema.evolution": "none",
					"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
					"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "true"}
			}
			cfg["tasks.max"] = strconv.Itoa(tasks)
			begin := time.Now()
			createConnector(t, url, login, name, cfg)
			first, all := fill(t, pg, schema+".created_users", want, begin, func() error { return connectorFailed(url, name) })
			rates[fmt.Sprintf("%s/%d", who, tasks)] = float64(want) / max(all-first, 100*time.Millisecond).Seconds()
			t.Logf("%s, tasks.max %d: %d rows, first at %s, all at %s", who, tasks, want, first, all)
			deleteConnector(t, url, login, name)
		}
	}
	peer := "Kafka Connect 4.3.1 + Debezium JDBC sink 3.6.0"
	for _, tasks := range []int{1, 2} {
		record(t, fmt.Sprintf("Connect JDBC sink into PostgreSQL, upsert, tasks.max %d: rows/s", tasks), peer, "rows/s",
			rates[fmt.Sprintf("ours/%d", tasks)], rates[fmt.Sprintf("Debezium/%d", tasks)], false)
	}
	record(t, "Connect worker: peak RSS (both runs)", peer, "MiB", oursPeak(), jvmPeak(), true)
}

// oursJDBC is the JDBC URL for our sink: jdbc without the PostgreSQL JDBC
// driver's stringtype (a server parameter to pgx, which the server
// refuses), with our sink's schema parameter.
func oursJDBC(t *testing.T, jdbc, schema string) string {
	u, err := url.Parse(strings.TrimPrefix(jdbc, "jdbc:"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("stringtype")
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return "jdbc:" + u.String()
}

// copyWithSchemas writes every record of users_created to schemaTopic
// (created with the same partitions), its value in JsonConverter's schema
// envelope: a struct of the user's fields, each a string. It returns how
// many users that is.
func copyWithSchemas(t *testing.T, kafka string) int {
	t.Helper()
	ends := endOffsets(t, kafka, spark.Topic)
	cl := proctest.Client(t, kafka, kgo.ConsumeTopics(spark.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(len(ends)), 1, nil, schemaTopic); err != nil {
		t.Fatalf("create %s: %v", schemaTopic, err)
	}
	want := total(ends)
	for read := 0; read < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("copy %d of %d users to %s: %v", read, want, schemaTopic, ctx.Err())
		}
		var out []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			read++
			out = append(out, &kgo.Record{Topic: schemaTopic, Partition: r.Partition, Key: r.Key, Value: envelope(t, r.Value)})
		})
		if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", schemaTopic, err)
		}
	}
	return want
}

// envelope wraps a user in JSON as {"schema": ..., "payload": ...}.
func envelope(t *testing.T, value []byte) []byte {
	var u map[string]any
	if err := json.Unmarshal(value, &u); err != nil {
		t.Fatalf("a record of %s is not a user in JSON: %v", spark.Topic, err)
	}
	keys := make([]string, 0, len(u))
	for k, v := range u {
		if _, ok := v.(string); !ok {
			t.Fatalf("user field %s is %T, not a string", k, v)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fields := make([]map[string]any, len(keys))
	for i, k := range keys {
		fields[i] = map[string]any{"field": k, "type": "string", "optional": false}
	}
	b, err := json.Marshal(map[string]any{
		"schema":  map[string]any{"type": "struct", "name": "created_users", "optional": false, "fields": fields},
		"payload": u,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// migrate creates created_users in the schema sinkURL names, by opening
// our PostgreSQL sink there (its migrations), so both sides write to a
// table of the same shape.
func migrate(t *testing.T, sinkURL string) {
	t.Helper()
	s, err := postgres.Open(t.Context(), sinkURL)
	if err != nil {
		t.Fatalf("create created_users: %v", err)
	}
	s.Close()
}

// connectCall sends one REST call to a Connect worker; login is
// "user:password" (ours) or empty (a JVM worker has none).
func connectCall(ctx context.Context, method, url, login string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if user, pass, ok := strings.Cut(login, ":"); ok {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func createConnector(t *testing.T, url, login, name string, cfg map[string]string) {
	t.Helper()
	code, b, err := connectCall(t.Context(), http.MethodPost, url+"/connectors", login, map[string]any{"name": name, "config": cfg})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create connector %s at %s: %d %s %v", name, url, code, b, err)
	}
}

func deleteConnector(t *testing.T, url, login, name string) {
	t.Helper()
	code, b, err := connectCall(t.Context(), http.MethodDelete, url+"/connectors/"+name, login, nil)
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("delete connector %s at %s: %d %s %v", name, url, code, b, err)
	}
}

// connectorFailed is an error when the connector or one of its tasks is
// FAILED, with its trace.
func connectorFailed(url, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, b, err := connectCall(ctx, http.MethodGet, url+"/connectors/"+name+"/status", "", nil)
	if err != nil || code != http.StatusOK {
		return nil // not known yet, or busy: the wait's timeout still bounds it
	}
	var st struct {
		Connector struct{ State, Trace string }
		Tasks     []struct {
			ID           int
			State, Trace string
		}
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	if st.Connector.State == "FAILED" {
		return fmt.Errorf("connector %s FAILED: %s", name, st.Connector.Trace)
	}
	for _, tk := range st.Tasks {
		if tk.State == "FAILED" {
			return fmt.Errorf("connector %s task %d FAILED: %.3000s", name, tk.ID, tk.Trace)
		}
	}
	return nil
}
