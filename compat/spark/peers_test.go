package spark

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/proctest"
)

// PeerResult is one row of scripts/peers.sh's table. Ratio is how many
// times better ours is: ours/peer for rates, peer/ours for times and
// memory.
type PeerResult struct {
	Name  string  `json:"name"`
	Ours  float64 `json:"ours"`
	Peer  float64 `json:"peer"`
	Unit  string  `json:"unit"`
	Ratio float64 `json:"ratio"`
}

// pollEvery is how often measure counts the rows.
const pollEvery = 100 * time.Millisecond

// run is what one side did: when its first row and its last row were in
// PostgreSQL, from its start, and the sum of its processes' peak RSS.
type run struct {
	first, all time.Duration
	rssMiB     float64
}

// TestPeerStreamPostgres is issue 22's first comparison, run by
// scripts/peers.sh (never by the suites: it is a measurement and skips
// without USERSTREAM_PEERS_OUT): our stream and the original's Spark job
// each read the same topic of USERSTREAM_PEERS_USERS JSON users (200,000)
// into PostgreSQL; the results go to the JSON file USERSTREAM_PEERS_OUT
// names.
func TestPeerStreamPostgres(t *testing.T) {
	out := os.Getenv("USERSTREAM_PEERS_OUT")
	if out == "" {
		t.Skip("USERSTREAM_PEERS_OUT is not set: a measurement, run by scripts/peers.sh")
	}
	py := sparkPython(t)
	pg := postgresURL(t)
	jars := sparkJars(t)
	n := 200000
	if v := os.Getenv("USERSTREAM_PEERS_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("USERSTREAM_PEERS_USERS=%q: want a positive number of users", v)
		}
	}
	kind := enginestest.BrokerKind(t)
	s := proctest.StartStackOn(t, kind)
	if _, errOut, code := proctest.Run(t, "produce", "--brokers", s.Kafka, "--schema-registry", "none",
		"--format", "json", "--users", strconv.Itoa(n)); code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}

	// Ours: the stream into its PostgreSQL sink, in a schema of its own.
	schema := createSchema(t, pg)
	oursTable := schema + ".created_users" // the sink's migrations create it
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	begin := time.Now()
	p := proctest.Start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", "none",
		"--sink", pg+sep+"schema="+schema, "--metrics-addr", "", "--group", "peers-ours")
	ours := measure(t, pg, oursTable, n, begin, func() []int { return []int{p.Pid()} })
	p.Signal(syscall.SIGTERM)
	p.Wait(t, time.Minute)

	// The peer: the original's Spark job, its default trigger, running as
	// the original does (not --available-now).
	table := createTable(t, pg)
	dir := t.TempDir()
	args, env, err := jobArgs(pg, jars, s.Kafka, table, filepath.Join(dir, "checkpoint"), false, kind == enginestest.Embedded)
	if err != nil {
		t.Fatal(err)
	}
	cmd := jobCommand(py, dir, env, args...)
	f, err := os.Create(filepath.Join(dir, "spark.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	begin = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start spark_stream.py: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	peer := measure(t, pg, table, n, begin, func() []int { return group(cmd.Process.Pid) })

	rate := func(r run) float64 {
		// All rows seen in one poll: the span is at most one poll interval.
		return float64(n) / max(r.all-r.first, pollEvery).Seconds()
	}
	results := []PeerResult{
		{Name: "stream into PostgreSQL: rows/s (first row to last)", Ours: rate(ours), Peer: rate(peer), Unit: "rows/s"},
		{Name: "stream into PostgreSQL: time to first row", Ours: ours.first.Seconds(), Peer: peer.first.Seconds(), Unit: "s"},
		{Name: "stream into PostgreSQL: peak RSS", Ours: ours.rssMiB, Peer: peer.rssMiB, Unit: "MiB"},
	}
	for i := range results {
		r := &results[i]
		if r.Unit == "rows/s" {
			r.Ratio = r.Ours / r.Peer
		} else {
			r.Ratio = r.Peer / r.Ours
		}
	}
	b, err := json.MarshalIndent(map[string]any{"users": n, "broker": kind, "results": results}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// measure polls table's count until it holds n rows (at most 15 minutes),
// noting when the first and the last arrived after begin, and sums the
// peak RSS (VmHWM) of the processes pids lists when it does.
func measure(t *testing.T, pg, table string, n int, begin time.Time, pids func() []int) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	schema, name, _ := strings.Cut(table, ".")
	q := "SELECT count(*) FROM " + pgx.Identifier{schema, name}.Sanitize()
	var r run
	for {
		var got int
		// Until the stream's migrations have run the table is missing: 0.
		_ = conn.QueryRow(ctx, q).Scan(&got)
		if got > 0 && r.first == 0 {
			r.first = time.Since(begin)
		}
		if got >= n {
			r.all = time.Since(begin)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s holds %d of %d rows after 15 minutes", table, got, n)
		}
		time.Sleep(pollEvery)
	}
	for _, pid := range pids() {
		r.rssMiB += peakRSS(pid)
	}
	return r
}

// group lists the processes of process group pgid (the job's python and
// the JVM it starts).
func group(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// peakRSS is a process's VmHWM in MiB (0 when it is gone).
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
