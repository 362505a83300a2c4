package connect_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/testwait"
)

func producePoison(t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(broker.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Key: []byte("poison"), Value: []byte("not a user"), Partition: 0}
	if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestToleranceAllSendsPoisonToDLQWithContextHeaders(t *testing.T) {
	addr := startBroker(t)
	wk := startWorker(t, addr, "w1")
	jdbc, open := sinkURL(t)
	cfg := jdbcConfig(jdbc)
	cfg["tasks.max"] = "1"
	cfg["errors.tolerance"] = "all"
	cfg["errors.deadletterqueue.topic.name"] = "pg-dlq"
	cfg["errors.deadletterqueue.context.headers.enable"] = "true"
	expectCode(t, "create", call(t, wk.url, "POST", "/connectors", true, map[string]any{"name": "pg", "config": cfg}, nil), 201)
	producePoison(t, addr)
	produceUsers(t, addr, 0, 100)
	testwait.For(t, 30*time.Second, "100 users", func() (int64, bool) { n := count(t, open); return n, n == 100 })

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("pg-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(t.Context())
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "not a user" {
		t.Fatalf("DLQ has %d records, want the poison", len(recs))
	}
	h := map[string]string{}
	for _, x := range recs[0].Headers {
		h[x.Key] = string(x.Value)
	}
	for k, want := range map[string]string{
		connect.HeaderConnectTopic: broker.Topic, connect.HeaderConnectPartition: "0", connect.HeaderConnectOffset: "0",
		connect.HeaderConnectName: "pg", connect.HeaderConnectTask: "0", connect.HeaderConnectStage: "VALUE_CONVERTER",
		connect.HeaderExceptionClass: "org.apache.kafka.connect.errors.DataException",
	} {
		if h[k] != want {
			t.Errorf("header %s = %q, want %q", k, h[k], want)
		}
	}
	if h[connect.HeaderExceptionMessage] == "" {
		t.Errorf("no %s header", connect.HeaderExceptionMessage)
	}
}

func TestToleranceNoneFailsTaskAndOffsetsSkipThePoison(t *testing.T) {
	addr := startBroker(t)
	wk := startWorker(t, addr, "w1")
	jdbc, open := sinkURL(t)
	cfg := jdbcConfig(jdbc)
	cfg["tasks.max"] = "1"
	expectCode(t, "create", call(t, wk.url, "POST", "/connectors", true, map[string]any{"name": "pg", "config": cfg}, nil), 201)
	producePoison(t, addr)

	var st connect.Status
	testwait.For(t, 30*time.Second, "the task to fail", func() (connect.Status, bool) {
		call(t, wk.url, "GET", "/connectors/pg/status", false, nil, &st)
		return st, len(st.Tasks) == 1 && st.Tasks[0].State == connect.StateFailed
	})
	if !strings.Contains(st.Tasks[0].Trace, "Tolerance exceeded") {
		t.Fatalf("trace = %q, want Connect's tolerance message", st.Tasks[0].Trace)
	}
	// Offsets move only while stopped; past the poison the task recovers.
	var off struct {
		Offsets []connect.Offset `json:"offsets"`
	}
	skip := connect.Offset{}
	skip.Partition.Topic, skip.Partition.Partition, skip.Offset.Offset = broker.Topic, 0, 1
	off.Offsets = []connect.Offset{skip}
	expectCode(t, "alter while running", call(t, wk.url, "PATCH", "/connectors/pg/offsets", true, off, nil), 400)
	expectCode(t, "stop", call(t, wk.url, "PUT", "/connectors/pg/stop", true, nil, nil), 204)
	expectCode(t, "alter while stopped", call(t, wk.url, "PATCH", "/connectors/pg/offsets", true, off, nil), 200)
	var got struct {
		Offsets []connect.Offset `json:"offsets"`
	}
	expectCode(t, "offsets", call(t, wk.url, "GET", "/connectors/pg/offsets", false, nil, &got), 200)
	if len(got.Offsets) != 1 || got.Offsets[0].Offset.Offset != 1 {
		t.Fatalf("offsets = %+v, want partition 0 at 1", got.Offsets)
	}
	expectCode(t, "resume", call(t, wk.url, "PUT", "/connectors/pg/resume", true, nil, nil), 202)
	produceUsers(t, addr, 0, 50)
	testwait.For(t, 30*time.Second, "50 users", func() (int64, bool) { n := count(t, open); return n, n == 50 })
	call(t, wk.url, "GET", "/connectors/pg/status", false, nil, &st)
	if len(st.Tasks) != 1 || st.Tasks[0].State != connect.StateRunning {
		t.Fatalf("status = %+v, want one RUNNING task", st)
	}
	var rst connect.Status
	expectCode(t, "restart only failed", call(t, wk.url, "POST", "/connectors/pg/restart?includeTasks=true&onlyFailed=true", true, nil, &rst), 202)
	expectCode(t, "restart task", call(t, wk.url, "POST", "/connectors/pg/tasks/0/restart", true, nil, nil), 204)
	expectCode(t, "restart missing task", call(t, wk.url, "POST", "/connectors/pg/tasks/"+strconv.Itoa(5)+"/restart", true, nil, nil), 404)
}
