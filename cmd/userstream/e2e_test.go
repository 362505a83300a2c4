package main

import (
	"context"
	wire "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// The end-to-end tests run the real binary as separate processes, the way a
// user runs the pipeline: broker, API, stream and producer talk over
// loopback with the real Kafka protocol.

// Shorthands for the proctest helpers these tests use all the time.
var (
	start         = proctest.Start
	runCmd        = proctest.Run
	waitListening = proctest.WaitListening
	count         = proctest.Count
	waitCount     = proctest.WaitCount
	tail          = proctest.Tail
	freeAddr      = proctest.FreeAddr
)

func startStack(t *testing.T) *proctest.Stack { return proctest.StartStack(t) }

func streamProc(t *testing.T, s *proctest.Stack, name string) *proctest.Proc {
	return start(t, name, "stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", s.Sink, "--metrics-addr", "", "--batch-size", "500")
}

// TestEndToEndKilledStreamLosesNothing is the acceptance run: 20000
// users produced through the API and the broker; the stream is killed with
// SIGKILL midway and restarted; the sink ends at exactly 20000.
func TestEndToEndKilledStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	s := startStack(t)
	st := streamProc(t, s, "stream-1")
	prod := start(t, "produce", "produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--source", "http://"+s.API+"/api/", "--users", "20000", "--batch-size", "1000", "--rate", "8000")

	// Kill the stream once it has stored some users but not all.
	testwait.For(t, 60*time.Second, "the stream midway: some users stored, not all", func() (int, bool) {
		n := count(t, s.Sink)
		if n >= 20000 {
			t.Fatalf("could not catch the stream midway (count %d)", n)
		}
		return n, n > 0
	}, testwait.Every(100*time.Millisecond))
	st.Signal(syscall.SIGKILL)
	st.Wait(t, 10*time.Second)
	killedAt := count(t, s.Sink)

	streamProc(t, s, "stream-2")
	if code := prod.Wait(t, 120*time.Second); code != 0 {
		t.Fatalf("produce exited %d:\n%s", code, prod.Output())
	}
	if !strings.Contains(prod.Output(), "produced 20000") {
		t.Fatalf("produce summary does not say 20000 produced:\n%s", prod.Output())
	}
	waitCount(t, s.Sink, 20000, 90*time.Second)
	t.Logf("stream killed at %d stored users; ended at exactly 20000", killedAt)
}

// TestEndToEndOriginalProducer feeds messages written by kafka-python in the
// original pipeline's JSON shape, without keys, and finds them in the sink.
func TestEndToEndOriginalProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import kafka").CombinedOutput(); err != nil {
		t.Skipf("kafka-python is not installed for /usr/bin/python3 (apt-get install python3-kafka): %s", out)
	}
	s := startStack(t)
	streamProc(t, s, "stream")
	script, _ := filepath.Abs("../../internal/broker/testdata/produce_original.py")
	out, err := exec.Command("/usr/bin/python3", script, s.Kafka, "25").CombinedOutput()
	if err != nil {
		t.Fatalf("kafka-python producer: %v\n%s", err, out)
	}
	waitCount(t, s.Sink, 25, 60*time.Second)
}

// TestStreamStopsCleanlyOnSIGTERM: a stopped worker exits 0 after
// committing, and a restarted one stores nothing twice.
func TestStreamStopsCleanlyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	s := startStack(t)
	metrics := freeAddr(t)
	st := start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", "none",
		"--sink", s.Sink, "--metrics-addr", metrics)
	_, errOut, code := runCmd(t, "produce", "--brokers", s.Kafka, "--schema-registry", "none",
		"--source", "http://"+s.API+"/api/", "--users", "3000")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	waitCount(t, s.Sink, 3000, 60*time.Second)

	// The worker's metrics say what it did.
	get := func(path string) string {
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if h := get("/healthz"); strings.TrimSpace(h) != "ok" {
		t.Errorf("/healthz = %q", h)
	}
	// The commit follows the sink write, so give it a moment.
	wants := []string{"userstream_stream_stored_total 3000", "userstream_stream_committed_total 3000",
		"userstream_stream_batch_seconds_count", "userstream_kafka_"}
	testwait.For(t, 10*time.Second, fmt.Sprintf("/metrics to show %q", wants), func() (string, bool) {
		m := get("/metrics")
		for _, want := range wants {
			if !strings.Contains(m, want) {
				return fmt.Sprintf("no %q in:\n%s", want, tail(m, 3000)), false
			}
		}
		return "", true
	}, testwait.Every(100*time.Millisecond))
	st.Signal(syscall.SIGTERM)
	if code := st.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("stream exited %d on SIGTERM, want 0:\n%s", code, st.Output())
	}
}

// TestEndToEndPostgres: the stream fed 20000 users lands exactly 20000 rows
// in a real PostgreSQL.
func TestEndToEndPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: no PostgreSQL to test against (make test starts one when PostgreSQL is installed)")
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	pg := base + sep + "schema=e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s := startStack(t)
	start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", pg, "--metrics-addr", "")
	_, errOut, code := runCmd(t, "produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--source", "http://"+s.API+"/api/", "--users", "20000", "--batch-size", "2000")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	waitCount(t, pg, 20000, 90*time.Second)
}

// TestDevRunsAndResumes: `userstream dev` on a fresh data dir stores users
// within seconds, in Avro with ids its registry knows; a second start on the
// same dir keeps them and ends with every message in the topic stored once.
func TestDevRunsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	dir := t.TempDir()
	kafka, registry := freeAddr(t), freeAddr(t)
	sinkURL := "sqlite:" + filepath.Join(dir, "users.db")
	connectAddr, webAddr := freeAddr(t), freeAddr(t)
	args := func(schedule string) []string {
		return []string{"dev", "--data-dir", dir, "--kafka-addr", kafka, "--registry-addr", registry,
			"--api-addr", freeAddr(t), "--metrics-addr", freeAddr(t), "--web-addr", webAddr, "--connect-addr", connectAddr, "--schedule", schedule,
			"--users-per-run", "500", "--status-every", "1s", "--viewer-password", "look"}
	}
	dev := start(t, "dev-1", args("@every 1s")...)
	began := time.Now()
	testwait.For(t, 30*time.Second, "1000 users in the sink after dev started", func() (int, bool) {
		if dev.Exited() {
			t.Fatalf("dev exited:\n%s", dev.Output())
		}
		n := count(t, sinkURL)
		return n, n >= 1000
	}, testwait.Every(100*time.Millisecond))
	t.Logf("first 1000 users stored %.1fs after start", time.Since(began).Seconds())

	// They were stored by the Connect worker's default connector, which a
	// viewer may see but not pause.
	connectURL := "http://" + connectAddr
	var status struct {
		Connector struct{ State string }   `json:"connector"`
		Tasks     []struct{ State string } `json:"tasks"`
	}
	if code := getJSON(t, connectURL+"/connectors/users-sqlite/status", &status); code != 200 ||
		status.Connector.State != "RUNNING" || len(status.Tasks) != 1 || status.Tasks[0].State != "RUNNING" {
		t.Fatalf("default connector status %d %+v, want RUNNING with one RUNNING task", code, status)
	}
	if code := connectCall(t, "PUT", connectURL+"/connectors/users-sqlite/pause", "viewer", "look"); code != 403 {
		t.Errorf("a viewer's pause: %d, want 403", code)
	}
	// The web UI's Connect page reads dev's own worker.
	req, _ := http.NewRequest("GET", "http://"+webAddr+"/api/ui/connect", nil)
	req.SetBasicAuth("viewer", "look")
	var page struct {
		Connectors []struct{ Name, State string } `json:"connectors"`
	}
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("GET /api/ui/connect: %v", err)
	} else {
		err := json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || len(page.Connectors) != 1 || page.Connectors[0].Name != "users-sqlite" || page.Connectors[0].State != "RUNNING" {
			t.Errorf("the UI's Connect page: %d %v %+v, want users-sqlite RUNNING", resp.StatusCode, err, page)
		}
	}

	// Messages are Avro in the Confluent wire format, with an id the
	// embedded registry serves.
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.ConsumeTopics(broker.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var first *kgo.Record
	for first == nil && ctx.Err() == nil {
		cl.PollRecords(ctx, 1).EachRecord(func(r *kgo.Record) { first = r })
	}
	cancel()
	cl.Close()
	if first == nil || len(first.Value) < 5 || first.Value[0] != 0 {
		t.Fatalf("first message is not in the Confluent wire format: %v", first)
	}
	id := wire.BigEndian.Uint32(first.Value[1:5])
	resp, err := http.Get(fmt.Sprintf("http://%s/schemas/ids/%d", registry, id))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "io.userstream") {
		t.Fatalf("registry does not know schema id %d: %d %s", id, resp.StatusCode, body)
	}

	dev.Signal(syscall.SIGINT)
	if code := dev.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("dev exited %d on Ctrl-C:\n%s", code, dev.Output())
	}
	kept := count(t, sinkURL)
	if want := fmt.Sprintf("userstream dev stopped: %d users stored", kept); !strings.Contains(dev.Output(), want) {
		t.Errorf("dev's output on Ctrl-C lacks %q:\n%s", want, dev.Output())
	}

	// Second start: no schedule and one run triggered by hand (through the
	// metadata store, as `userstream dags` does), then idle, so the stream
	// can catch up with everything in the topic, including what the first
	// run left.
	dev2 := start(t, "dev-2", args("none")...)
	dev2.WaitOutput(t, "userstream dev is running", 60*time.Second)
	if out, errOut, code := runCmd(t, "dags", "trigger", "user_automation", "--metadata", "sqlite:"+filepath.Join(dir, "meta.db")); code != 0 {
		t.Fatalf("dags trigger: exit %d: %s%s", code, out, errOut)
	}
	var names []string
	if code := getJSON(t, connectURL+"/connectors", &names); code != 200 || len(names) != 1 || names[0] != "users-sqlite" {
		t.Errorf("connectors after the second start: %d %v, want [users-sqlite]", code, names)
	}
	testwait.For(t, 60*time.Second, fmt.Sprintf("the sink to hold every message of the topic, more than the %d kept", kept), func() (string, bool) {
		n := count(t, sinkURL)
		if n < kept {
			t.Fatalf("the second run lost users: %d before, %d now", kept, n)
		}
		msgs := topicMessages(t, kafka)
		return fmt.Sprintf("%d users, %d messages", n, msgs), msgs > int64(kept) && int64(n) == msgs
	}, testwait.Every(200*time.Millisecond))
}

// TestDevConnectorTakesOverAndStaysDeleted: a data dir whose users dev's
// stream stored (Connect off) gets the default connector with the stream's
// offsets, so nothing is stored twice or read again; once the admin deletes
// the connector, later starts leave it deleted.
func TestDevConnectorTakesOverAndStaysDeleted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	dir := t.TempDir()
	sinkURL := "sqlite:" + filepath.Join(dir, "users.db")
	kafka, connectAddr, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	args := func(schedule, connect string) []string {
		return []string{"dev", "--data-dir", dir, "--kafka-addr", kafka, "--registry-addr", freeAddr(t),
			"--api-addr", freeAddr(t), "--metrics-addr", metrics, "--web-addr", "", "--connect-addr", connect,
			"--schedule", schedule, "--users-per-run", "700", "--admin-password", "pw"}
	}
	stop := func(p *proctest.Proc) {
		t.Helper()
		p.Signal(syscall.SIGINT)
		if code := p.Wait(t, 30*time.Second); code != 0 {
			t.Fatalf("dev exited %d on Ctrl-C:\n%s", code, p.Output())
		}
	}
	dev := start(t, "dev-stream", args("@once", "")...)
	waitCount(t, sinkURL, 700, 30*time.Second)
	stop(dev)

	dev = start(t, "dev-connect", args("none", connectAddr)...)
	connectURL := "http://" + connectAddr
	var names []string
	testwait.For(t, 20*time.Second, "the default connector", func() (any, bool) {
		if dev.Exited() {
			t.Fatalf("dev exited:\n%s", dev.Output())
		}
		code, err := getJSONQuiet(connectURL+"/connectors", &names)
		return fmt.Sprintf("%d %v %v", code, err, names), len(names) > 0
	}, testwait.Every(100*time.Millisecond))
	if !strings.Contains(dev.Output(), "connector takes over the stream's offsets") {
		t.Errorf("dev did not hand the stream's offsets to the connector:\n%s", dev.Output())
	}
	// Caught up with nothing to do (lag 0), and over 2 s the connector
	// reads nothing again.
	metricsText := func() string {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.Status + "\n" + string(body)
	}
	testwait.For(t, 20*time.Second, "the connector's lag at 0", func() (string, bool) {
		m := metricsText()
		return tail(m, 3000), strings.Contains(m, "userstream_stream_lag 0")
	}, testwait.Every(100*time.Millisecond))
	testwait.Holds(t, 2*time.Second, "the connector reading nothing the stream stored", func() (string, bool) {
		m := metricsText()
		return tail(m, 3000), strings.Contains(m, "userstream_stream_consumed_total 0")
	}, testwait.Every(200*time.Millisecond))
	if code := connectCall(t, "DELETE", connectURL+"/connectors/users-sqlite", "admin", "pw"); code != 204 {
		t.Fatalf("DELETE the default connector: %d", code)
	}
	stop(dev)

	dev = start(t, "dev-again", args("none", connectAddr)...)
	dev.WaitOutput(t, "userstream dev is running", 60*time.Second)
	if code := getJSON(t, connectURL+"/connectors", &names); code != 200 || len(names) != 0 {
		t.Errorf("connectors after a start that follows the deletion: %d %v, want none", code, names)
	}
	if n := count(t, sinkURL); n != 700 {
		t.Errorf("sink holds %d users, want the 700 stored", n)
	}
}

// getJSON GETs url into out and returns the status code.
func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	code, err := getJSONQuiet(url, out)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return code
}

func getJSONQuiet(url string, out any) (int, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// connectCall sends a bodiless call with basic auth and returns its status.
func connectCall(t *testing.T, method, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// topicMessages sums the end offsets of users_created: with fresh seeds every
// message is a distinct user, so a complete sink holds exactly this many.
func topicMessages(t *testing.T, kafka string) int64 {
	return proctest.EndOffsets(t, kafka, broker.Topic)
}

// TestTopicsCreateDescribe: `topics create` and `topics describe` on the
// matrix's broker: the topics get the cluster's replication factor, every
// replica in sync, and describe says min.insync.replicas where the broker
// has it (2 on a three-node cluster).
func TestTopicsCreateDescribe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	s := startStack(t)
	if _, errOut, code := runCmd(t, "topics", "create", "--brokers", s.Kafka); code != 0 {
		t.Fatalf("topics create: exit %d: %s", code, errOut)
	}
	out, errOut, code := runCmd(t, "topics", "describe", broker.Topic, "--brokers", s.Kafka, "--json")
	if code != 0 {
		t.Fatalf("topics describe: exit %d: %s", code, errOut)
	}
	var d broker.TopicDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("topics describe --json: %v\n%s", err, out)
	}
	nodes := len(strings.Split(s.Kafka, ","))
	if len(d.Partitions) != int(broker.DefaultPartitions) {
		t.Errorf("%d partitions, want %d", len(d.Partitions), broker.DefaultPartitions)
	}
	for _, p := range d.Partitions {
		if len(p.Replicas) != nodes || len(p.ISR) != nodes {
			t.Errorf("partition %d: replicas %v, in sync %v; want all %d nodes", p.Partition, p.Replicas, p.ISR, nodes)
		}
	}
	if s.Cluster != nil && d.MinInsyncReplicas != min(nodes, 2) {
		t.Errorf("min.insync.replicas %d on a %d-node cluster, want %d", d.MinInsyncReplicas, nodes, min(nodes, 2))
	}
	text, _, _ := runCmd(t, "topics", "describe", broker.Topic, "--brokers", s.Kafka)
	if !strings.Contains(text, "ISR") {
		t.Errorf("topics describe prints no ISR column:\n%s", text)
	}
}
