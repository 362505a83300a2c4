package main

import (
	"bytes"
	"context"
	wire "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
)

// The end-to-end tests run the real binary as separate processes, the way a
// user runs the pipeline: broker, API, stream and producer talk over
// loopback with the real Kafka protocol.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds userstream once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "userstream-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "userstream")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs the binary with args in the background; its output goes to a
// file that is printed if the test fails.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s output:\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

// cleanEnv drops USERSTREAM_* variables so the developer's environment
// cannot change what a test runs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USERSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		b, _ := os.ReadFile(p.log)
		t.Fatalf("%s did not exit within %s; output:\n%s", p.name, d, tail(string(b), 4000))
		return -1
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// runCmd runs the binary to completion and returns stdout, stderr and the
// exit code.
func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = cleanEnv()
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before listening on %s:\n%s", p.name, addr, p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s is not listening on %s", p.name, addr)
}

func count(t *testing.T, sinkURL string) int {
	t.Helper()
	out, errOut, code := runCmd(t, "users", "count", "--sink", sinkURL)
	if code != 0 && strings.Contains(errOut, "no SQLite database") {
		return 0 // the stream has not created it yet
	}
	if code != 0 {
		t.Fatalf("users count: exit %d: %s", code, errOut)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("users count printed %q, not one integer", out)
	}
	return n
}

func waitCount(t *testing.T, sinkURL string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := -1
	for time.Now().Before(deadline) {
		if last = count(t, sinkURL); last == want {
			return
		}
		if last > want {
			t.Fatalf("the sink holds %d users, more than the %d produced", last, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the sink holds %d users after %s, want %d", last, within, want)
}

type stack struct {
	kafka, registry, api, sink string
	dir                        string
}

// startStack runs `userstream broker` (with its registry) and `userstream
// api` on free loopback ports.
func startStack(t *testing.T) stack {
	t.Helper()
	dir := t.TempDir()
	s := stack{kafka: freeAddr(t), registry: freeAddr(t), api: freeAddr(t), dir: dir,
		sink: "sqlite:" + filepath.Join(dir, "users.db")}
	b := start(t, "broker", "broker", "--addr", s.kafka, "--registry-addr", s.registry, "--data-dir", filepath.Join(dir, "kafka"))
	waitListening(t, b, s.kafka)
	waitListening(t, b, s.registry)
	a := start(t, "api", "api", "--addr", s.api)
	waitListening(t, a, s.api)
	return s
}

func (s stack) stream(t *testing.T, name string) *proc {
	return start(t, name, "stream", "--brokers", s.kafka, "--schema-registry", "http://"+s.registry,
		"--sink", s.sink, "--metrics-addr", "", "--batch-size", "500")
}

// TestEndToEndKilledStreamLosesNothing is the acceptance run: 20000
// users produced through the API and the broker; the stream is killed with
// SIGKILL midway and restarted; the sink ends at exactly 20000.
func TestEndToEndKilledStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	s := startStack(t)
	st := s.stream(t, "stream-1")
	prod := start(t, "produce", "produce", "--brokers", s.kafka, "--schema-registry", "http://"+s.registry,
		"--source", "http://"+s.api+"/api/", "--users", "20000", "--batch-size", "1000", "--rate", "8000")

	// Kill the stream once it has stored some users but not all.
	deadline := time.Now().Add(60 * time.Second)
	for n := count(t, s.sink); n == 0 || n >= 20000; n = count(t, s.sink) {
		if time.Now().After(deadline) || n >= 20000 {
			t.Fatalf("could not catch the stream midway (count %d)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st.signal(syscall.SIGKILL)
	st.wait(t, 10*time.Second)
	killedAt := count(t, s.sink)

	s.stream(t, "stream-2")
	if code := prod.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("produce exited %d:\n%s", code, prod.output())
	}
	if !strings.Contains(prod.output(), "produced 20000") {
		t.Fatalf("produce summary does not say 20000 produced:\n%s", prod.output())
	}
	waitCount(t, s.sink, 20000, 90*time.Second)
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
	s.stream(t, "stream")
	script, _ := filepath.Abs("../../internal/broker/testdata/produce_original.py")
	out, err := exec.Command("/usr/bin/python3", script, s.kafka, "25").CombinedOutput()
	if err != nil {
		t.Fatalf("kafka-python producer: %v\n%s", err, out)
	}
	waitCount(t, s.sink, 25, 60*time.Second)
}

// TestStreamStopsCleanlyOnSIGTERM: a stopped worker exits 0 after
// committing, and a restarted one stores nothing twice.
func TestStreamStopsCleanlyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	s := startStack(t)
	metrics := freeAddr(t)
	st := start(t, "stream", "stream", "--brokers", s.kafka, "--schema-registry", "none",
		"--sink", s.sink, "--metrics-addr", metrics)
	_, errOut, code := runCmd(t, "produce", "--brokers", s.kafka, "--schema-registry", "none",
		"--source", "http://"+s.api+"/api/", "--users", "3000")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	waitCount(t, s.sink, 3000, 60*time.Second)

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
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m, missing := get("/metrics"), ""
		for _, want := range wants {
			if !strings.Contains(m, want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, tail(m, 3000))
		}
	}
	st.signal(syscall.SIGTERM)
	if code := st.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("stream exited %d on SIGTERM, want 0:\n%s", code, st.output())
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
	start(t, "stream", "stream", "--brokers", s.kafka, "--schema-registry", "http://"+s.registry,
		"--sink", pg, "--metrics-addr", "")
	_, errOut, code := runCmd(t, "produce", "--brokers", s.kafka, "--schema-registry", "http://"+s.registry,
		"--source", "http://"+s.api+"/api/", "--users", "20000", "--batch-size", "2000")
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
	args := func(interval string) []string {
		return []string{"dev", "--data-dir", dir, "--kafka-addr", kafka, "--registry-addr", registry,
			"--api-addr", freeAddr(t), "--metrics-addr", freeAddr(t), "--interval", interval,
			"--users-per-run", "500", "--status-every", "1s"}
	}
	dev := start(t, "dev-1", args("1s")...)
	began := time.Now()
	deadline := began.Add(30 * time.Second)
	for count(t, sinkURL) < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("no 1000 users in the sink 30s after dev started:\n%s", dev.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first 1000 users stored %.1fs after start", time.Since(began).Seconds())

	// Messages are Avro in the Confluent wire format, with an id the
	// embedded registry serves.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumeTopics(broker.Topic),
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

	dev.signal(syscall.SIGINT)
	if code := dev.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("dev exited %d on Ctrl-C:\n%s", code, dev.output())
	}
	kept := count(t, sinkURL)

	// Second start: one ingest run, then idle, so the stream can catch up
	// with everything in the topic, including what the first run left.
	dev2 := start(t, "dev-2", args("1h")...)
	deadline = time.Now().Add(60 * time.Second)
	for {
		n := count(t, sinkURL)
		if n < kept {
			t.Fatalf("the second run lost users: %d before, %d now", kept, n)
		}
		if msgs := topicMessages(t, kafka); msgs > int64(kept) && int64(n) == msgs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink has %d users, topic %d messages:\n%s", n, topicMessages(t, kafka), dev2.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// topicMessages sums the end offsets of users_created: with fresh seeds every
// message is a distinct user, so a complete sink holds exactly this many.
func topicMessages(t *testing.T, kafka string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, broker.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}
