// Package chaos_test is the fault suite: each case runs the real userstream
// binary as separate processes on 127.0.0.1, injects one fault (a SIGKILL,
// a stopped database, a silent server, poison messages, a full disk...),
// and reports what was acknowledged, stored, duplicated and dead-lettered,
// and how many seconds the pipeline took to converge after the fault ended.
//
// The quick form (the default, run by `make test` and CI) is bounded to a
// few minutes in all; USERSTREAM_CHAOS=long (`make chaos`) runs the sizes of
// docs/reliability.md. Every case is bounded in count and time and stops by
// itself. USERSTREAM_CHAOS_REPORT=FILE appends each case's figures to FILE
// as JSON lines.
package chaos_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// long reports whether the long form runs.
func long() bool { return os.Getenv("USERSTREAM_CHAOS") == "long" }

// size picks the quick or the long figure.
func size(quick, long_ int) int {
	if long() {
		return long_
	}
	return quick
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault suite runs the binary; -short skips it")
	}
}

// figures are what a case reports.
type figures struct {
	Case         string  `json:"case"`
	Form         string  `json:"form"`
	Acked        int64   `json:"acknowledged"`
	Stored       int64   `json:"stored"`
	Duplicates   int64   `json:"duplicates"`
	DeadLettered int64   `json:"dead_lettered"`
	Converge     float64 `json:"converge_seconds"`
	Note         string  `json:"note,omitempty"`
}

// report logs the figures in one greppable line and appends them to
// $USERSTREAM_CHAOS_REPORT.
func report(t *testing.T, f figures) {
	t.Helper()
	f.Case = t.Name()
	f.Form = "quick"
	if long() {
		f.Form = "long"
	}
	t.Logf("FIGURES %s acknowledged=%d stored=%d duplicates=%d dead_lettered=%d converge=%.1fs %s",
		f.Case, f.Acked, f.Stored, f.Duplicates, f.DeadLettered, f.Converge, f.Note)
	if path := os.Getenv("USERSTREAM_CHAOS_REPORT"); path != "" {
		b, _ := json.Marshal(f)
		fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		defer fh.Close()
		fmt.Fprintf(fh, "%s\n", b)
	}
}

var producedRE = regexp.MustCompile(`produced (\d+)`)

// produced reads the acknowledged count from a produce summary line.
func produced(t *testing.T, out string) int64 {
	t.Helper()
	m := producedRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no produce summary in:\n%s", proctest.Tail(out, 2000))
	}
	n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return n
}

// endOffsets sums the end offsets of topic.
var endOffsets = proctest.EndOffsets

// produceRaw writes values to users_created as they are, without keys.
func produceRaw(t *testing.T, kafka string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.DefaultProduceTopic(broker.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// deadLetters reads the whole DLQ topic.
func deadLetters(t *testing.T, kafka string) []*kgo.Record {
	t.Helper()
	want := endOffsets(t, kafka, broker.DLQTopic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.ConsumeTopics(broker.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// duplicates is count(*) - count(distinct id) of the sink's table.
func duplicates(t *testing.T, sinkURL string) int64 {
	t.Helper()
	const q = `SELECT count(*) - count(DISTINCT id) FROM created_users`
	var n int64
	switch {
	case strings.HasPrefix(sinkURL, "cassandra:"):
		// created_users' primary key is the id: a second write of a user
		// overwrites the first, so no row can be stored twice, and a
		// count equal to the users acknowledged proves each once.
		return 0
	case strings.HasPrefix(sinkURL, "sqlite:"):
		db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(sinkURL, "sqlite:")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("duplicates: %v", err)
		}
	default:
		conn, err := pgx.Connect(context.Background(), pgURL(sinkURL))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("duplicates: %v", err)
		}
	}
	return n
}

// pgURL turns a sink URL with userstream's schema= parameter into one pgx
// takes, with the search_path set to the schema.
func pgURL(sinkURL string) string {
	base, schema, ok := strings.Cut(sinkURL, "schema=")
	if !ok {
		return sinkURL
	}
	schema, _, _ = strings.Cut(schema, "&")
	base = strings.TrimRight(base, "?&")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// postgresSink returns a sink URL in a fresh schema of the test database, or
// skips when there is none.
func postgresSink(t *testing.T) string {
	t.Helper()
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: no PostgreSQL to test against (make test starts one when PostgreSQL is installed)")
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "schema=chaos_" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// waitCount polls the sink until it holds want users and returns how long
// that took from since; it fails after within.
func waitCount(t *testing.T, sinkURL string, want int, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	proctest.WaitCount(t, sinkURL, want, within)
	return time.Since(since)
}

// waitAbove waits until the sink holds more than n users and returns how
// many it holds.
func waitAbove(t *testing.T, sinkURL string, n int, within time.Duration) int {
	t.Helper()
	return testwait.For(t, within, fmt.Sprintf("more than %d users in the sink", n), func() (int, bool) {
		c := proctest.Count(t, sinkURL)
		return c, c > n
	}, testwait.Every(100*time.Millisecond))
}

// converge waits, after a run's produce has ended, for the sink to hold
// every acknowledged user (within 30 s plus extra), checks that no row is
// stored twice, reports the figures, and returns how long it took from the
// produce's end.
func converge(t *testing.T, s *proctest.Stack, prod *proctest.Proc, sinkURL string, extra time.Duration, note string) time.Duration {
	t.Helper()
	if code := prod.Wait(t, 180*time.Second); code != 0 {
		t.Fatalf("produce exited %d:\n%s", code, prod.Output())
	}
	produceEnd := time.Now()
	acked := produced(t, prod.Output())
	conv := waitCount(t, sinkURL, int(acked), produceEnd, 30*time.Second+extra)
	dup := duplicates(t, sinkURL)
	if dup != 0 {
		t.Errorf("%d duplicate rows", dup)
	}
	report(t, figures{Acked: acked, Stored: acked, Duplicates: dup,
		DeadLettered: endOffsets(t, s.Kafka, broker.DLQTopic), Converge: conv.Seconds(), Note: note})
	return conv
}

// storedRates are a worker's users stored in each second, sampled from its
// /metrics until the test ends.
type storedRates struct {
	mu     sync.Mutex
	perSec []int64 // from the worker's first stored user
}

var storedRE = regexp.MustCompile(`(?m)^userstream_stream_stored_total (\S+)$`)

// sampleStored reads userstream_stream_stored_total from the worker
// serving metrics on addr every second.
func sampleStored(t *testing.T, addr string) *storedRates {
	r := &storedRates{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		c := http.Client{Timeout: 900 * time.Millisecond}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last := int64(-1)
		for {
			var now int64 = -1
			if resp, err := c.Get("http://" + addr + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if m := storedRE.FindSubmatch(b); m != nil {
					f, _ := strconv.ParseFloat(string(m[1]), 64)
					now = int64(f)
				}
			}
			r.mu.Lock()
			if now >= 0 && last >= 0 && (now > 0 || len(r.perSec) > 0) {
				r.perSec = append(r.perSec, now-last)
			}
			r.mu.Unlock()
			if now >= 0 {
				last = now
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

// String is the rows/s series, one figure a second.
func (r *storedRates) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := make([]string, len(r.perSec))
	for i, n := range r.perSec {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// longestStall is the longest run of seconds without a stored user
// between the first and the last second that stored some.
func (r *storedRates) longestStall() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := len(r.perSec)
	for end > 0 && r.perSec[end-1] == 0 {
		end--
	}
	longest, run := 0, 0
	for _, n := range r.perSec[:end] {
		if n == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// worker starts a stream worker.
func worker(t *testing.T, s *proctest.Stack, name, sinkURL string, extra ...string) *proctest.Proc {
	args := append([]string{"stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", sinkURL, "--metrics-addr", ""}, extra...)
	return proctest.Start(t, name, args...)
}

// produceUsers starts `userstream produce --users n` at rate users/s.
func produceUsers(t *testing.T, s *proctest.Stack, n, rate int, extra ...string) *proctest.Proc {
	args := append([]string{"produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--source", s.SourceURL(), "--users", strconv.Itoa(n), "--batch-size", "1000",
		"--rate", strconv.Itoa(rate)}, extra...)
	return proctest.Start(t, "produce", args...)
}

// silentServer accepts TCP connections and never answers: a server that is
// up but hung. It returns its address.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// proxy forwards TCP connections to target until it is paused: while paused
// it refuses new connections and cuts the open ones, as a server that went
// away does.
type proxy struct {
	target string
	ln     net.Listener
	addr   string

	mu     sync.Mutex
	paused bool
	conns  map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.pause() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go func() {
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns[up] = struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}

func (p *proxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *proxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// pgCluster is a throwaway PostgreSQL server the test starts, stops and
// starts again itself.
type pgCluster struct {
	bindir, dir string
	port        int
	runas       []string
}

// startPostgres initialises and starts a private cluster, or skips when the
// server binaries are not installed.
func startPostgres(t *testing.T) *pgCluster {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		t.Skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
	}
	sort.Strings(dirs)
	// Not t.TempDir: its parents are private to this user, and the server
	// may run as postgres.
	dir, err := os.MkdirTemp("", "userstream-chaos-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &pgCluster{bindir: filepath.Dir(dirs[len(dirs)-1]), dir: dir}
	if os.Getuid() == 0 {
		// initdb refuses to run as root.
		if err := exec.Command("id", "postgres").Run(); err != nil {
			t.Skip("running as root without a postgres user to run the server as")
		}
		if err := os.Chown(c.dir, pgUID(t), -1); err != nil {
			t.Fatal(err)
		}
		c.runas = []string{"runuser", "-u", "postgres", "--"}
	}
	_, port, _ := net.SplitHostPort(proctest.FreeAddr(t))
	c.port, _ = strconv.Atoi(port)
	c.run(t, "initdb", "-D", c.data(), "-U", "userstream", "--auth=trust")
	c.Start(t)
	t.Cleanup(func() { _ = c.ctl("stop", "-m", "immediate") })
	c.run(t, "createdb", "-h", "127.0.0.1", "-p", port, "-U", "userstream", "chaos")
	return c
}

func pgUID(t *testing.T) int {
	out, err := exec.Command("id", "-u", "postgres").Output()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	argv := append(append([]string{}, c.runas...), filepath.Join(c.bindir, prog))
	out, err := exec.Command(argv[0], append(argv[1:], args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func (c *pgCluster) ctl(args ...string) error {
	argv := append(append([]string{}, c.runas...), filepath.Join(c.bindir, "pg_ctl"), "-D", c.data(), "-w")
	return exec.Command(argv[0], append(argv[1:], args...)...).Run()
}

// Start starts the server (again).
func (c *pgCluster) Start(t *testing.T) {
	t.Helper()
	// synchronous_commit stays on: an immediate stop would otherwise lose
	// commits the server had acknowledged, which no client can survive.
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off", c.port, c.dir)
	if err := c.ctl("-l", filepath.Join(c.dir, "log"), "-o", opts, "start"); err != nil {
		b, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s", err, b)
	}
}

// Stop stops the server at once (clients are cut off, as in a crash;
// acknowledged commits survive, as with synchronous_commit=on).
func (c *pgCluster) Stop(t *testing.T) {
	t.Helper()
	if err := c.ctl("stop", "-m", "immediate"); err != nil {
		t.Fatalf("pg_ctl stop: %v", err)
	}
}

// URL is the cluster's database as a sink URL.
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://userstream@127.0.0.1:%d/chaos?sslmode=disable", c.port)
}

// rss returns the resident set size of a process in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// sigterm stops p with SIGTERM and waits.
func sigterm(t *testing.T, p *proctest.Proc) int {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	return p.Wait(t, 40*time.Second)
}
