package peers

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/userstream/userstream/compat/spark"
	"github.com/userstream/userstream/internal/proctest"
)

// latencyRate is the fixed rate of the latency phase, users/s.
const latencyRate = 2000

// side is one stream processor under measurement: start starts it and
// returns its processes' ids and a stop.
type side struct {
	name  string
	table string
	start func(t *testing.T) (pids func() []int, check func() error, stop func())
}

// streamRun is what one side did.
type streamRun struct {
	first, all    time.Duration // from its start: its first row, the backlog's last
	rows          int           // the backlog
	p50, p99      time.Duration // stored_at - produce time at latencyRate
	rssMiB        float64
	latencyWindow int
	burst         burstRun
}

// burstRun is one side's burst: users produced unpaced while it runs,
// caught up and warm, timed from the produce's start to the last row
// stored, so reading, parsing and writing are all in the span on both
// sides; and the CPU time each part of the machine spent on it.
type burstRun struct {
	rows                int
	took                time.Duration
	side, postgres, all float64 // CPU seconds: the side's processes, PostgreSQL's, the machine's
}

func (b burstRun) rate() float64 { return float64(b.rows) / b.took.Seconds() }

// perHundredK is CPU seconds per 100,000 rows.
func (b burstRun) perHundredK(cpu float64) float64 { return cpu * 100000 / float64(b.rows) }

// TestStreamVsSpark: our stream (its PostgreSQL sink) and the original's
// Spark job (compat/spark/spark_stream.py, pyspark 4.0, local[2], foreachBatch
// + JDBC) with its default trigger and with a 1 s trigger, each started on
// users_created on Apache Kafka made anew with the same backlog of JSON
// users (USERSTREAM_PEERS_USERS, 200,000; 5,000 quick): rows/s from its
// first row to the backlog's last, time from its start to the first row;
// then, caught up, USERSTREAM_PEERS_LATENCY_SECONDS (60; 10 quick) of users
// produced at 2,000/s: latency = the row's stored_at (PostgreSQL's now() in
// the writing transaction, on both sides) minus the record's produce
// timestamp; then, warm, a burst of as many users as the backlog produced
// unpaced: rows/s from the produce's start to the last row, and the CPU
// seconds of the side's processes and of PostgreSQL's; peak RSS of each
// side's processes (Kafka, shared, counts for neither).
func TestStreamVsSpark(t *testing.T) {
	quick := measured(t)
	py := spark.Python(t)
	pg := spark.PostgresURL(t)
	jars := spark.Jars(t)
	n := size(t, "USERSTREAM_PEERS_USERS", quick, 200000, 5000)
	secs := size(t, "USERSTREAM_PEERS_LATENCY_SECONDS", quick, 60, 10)
	kafka := sharedKafka(t)

	sparkSide := func(name string, trigger float64) side {
		table := spark.CreateTable(t, pg, "stored_at timestamptz NOT NULL DEFAULT now()")
		return side{name: name, table: table, start: func(t *testing.T) (func() []int, func() error, func()) {
			pid, check, stop := startSpark(t, py, pg, jars, kafka, table, trigger)
			return func() []int { return []int{pid} }, check, stop
		}}
	}
	schema := spark.CreateSchema(t, pg)
	sides := []side{
		{name: "ours", table: schema + ".created_users", start: func(t *testing.T) (func() []int, func() error, func()) {
			p := proctest.Start(t, "stream", "stream", "--brokers", kafka, "--schema-registry", "none",
				"--sink", withParam(pg, "schema="+schema), "--metrics-addr", "",
				"--group", fmt.Sprintf("peers-%d", time.Now().UnixNano()))
			check := func() error {
				if p.Exited() {
					return fmt.Errorf("stream exited: %s", proctest.Tail(p.Output(), 2000))
				}
				return nil
			}
			return func() []int { return []int{p.Pid()} }, check, func() { p.Signal(syscall.SIGTERM); p.Wait(t, time.Minute) }
		}},
		sparkSide("Spark 4.0.0, default trigger", 0),
		sparkSide("Spark 4.0.0, 1 s trigger", 1),
	}
	runs := make([]streamRun, len(sides))
	for i, s := range sides {
		t.Run(s.name, func(t *testing.T) {
			// The same backlog for every side: the topic anew, n users.
			deleteTopic(t, kafka, spark.Topic)
			produceJSON(t, kafka, n, 0)
			backlog := endOffsets(t, kafka, spark.Topic)
			want := total(backlog)
			begin := time.Now()
			pids, check, stop := s.start(t)
			peak := rssWatch(pids)
			t.Cleanup(func() { peak() })
			first, all := fill(t, pg, s.table, want, begin, check)
			produceJSON(t, kafka, latencyRate*secs, latencyRate)
			after := endOffsets(t, kafka, spark.Topic)
			fill(t, pg, s.table, total(after), begin, check)
			burst := burstOf(t, kafka, pg, s.table, n, pids, check)
			r := streamRun{first: first, all: all, rows: want, rssMiB: peak(), burst: burst}
			stop()
			ds := latencies(t, pg, s.table, producedAt(t, kafka, spark.Topic, backlog, after))
			r.p50, r.p99, r.latencyWindow = percentile(ds, 50), percentile(ds, 99), len(ds)
			t.Logf("%s: %d rows, first at %s, all at %s; latency p50 %s p99 %s over %d users; peak RSS %.0f MiB",
				s.name, want, first, all, r.p50, r.p99, len(ds), r.rssMiB)
			t.Logf("%s: burst of %d users in %s (%.0f rows/s); CPU s: side %.2f, PostgreSQL %.2f, machine %.2f (of %.2f the two cores had)",
				s.name, burst.rows, burst.took, burst.rate(), burst.side, burst.postgres, burst.all, 2*burst.took.Seconds())
			runs[i] = r
		})
	}
	if t.Failed() {
		return
	}
	rate := func(r streamRun) float64 {
		// All rows seen in one poll: the span is at most one poll.
		return float64(r.rows) / max(r.all-r.first, 100*time.Millisecond).Seconds()
	}
	ours := runs[0]
	for i, peer := range runs[1:] {
		name := sides[i+1].name
		record(t, "stream into PostgreSQL: rows/s (backlog, first row to last)", name, "rows/s", rate(ours), rate(peer), false)
		record(t, "stream, warm burst while running: rows/s (produce start to last row)", name, "rows/s", ours.burst.rate(), peer.burst.rate(), false)
		record(t, "stream, warm burst: the stream's CPU s per 100k rows", name, "CPU s", ours.burst.perHundredK(ours.burst.side), peer.burst.perHundredK(peer.burst.side), true)
		record(t, "stream, warm burst: PostgreSQL's CPU s per 100k rows", name, "CPU s", ours.burst.perHundredK(ours.burst.postgres), peer.burst.perHundredK(peer.burst.postgres), true)
		record(t, "stream into PostgreSQL: time from start to first row", name, "s", ours.first.Seconds(), peer.first.Seconds(), true)
		record(t, fmt.Sprintf("stream at %d users/s: latency p50", latencyRate), name, "ms", ms(ours.p50), ms(peer.p50), true)
		record(t, fmt.Sprintf("stream at %d users/s: latency p99", latencyRate), name, "ms", ms(ours.p99), ms(peer.p99), true)
		record(t, "stream: peak RSS", name, "MiB", ours.rssMiB, peer.rssMiB, true)
	}
}

// burstOf produces n users unpaced while a side runs caught up, waits
// for table to hold them, and returns the span and the CPU spent.
func burstOf(t *testing.T, kafka, pg, table string, n int, pids func() []int, check func() error) burstRun {
	t.Helper()
	side0, pg0, all0 := cpuSeconds(pids()...), cpuSeconds(pidsNamed("postgres")...), machineCPUSeconds()
	begin := time.Now()
	produceJSON(t, kafka, n, 0)
	_, took := fill(t, pg, table, total(endOffsets(t, kafka, spark.Topic)), begin, check)
	return burstRun{rows: n, took: took,
		side:     cpuSeconds(pids()...) - side0,
		postgres: cpuSeconds(pidsNamed("postgres")...) - pg0,
		all:      machineCPUSeconds() - all0}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// withParam adds a query parameter to a URL.
func withParam(u, kv string) string {
	for _, c := range u {
		if c == '?' {
			return u + "&" + kv
		}
	}
	return u + "?" + kv
}

// startSpark starts spark_stream.py on kafka into table (trigger seconds
// between micro-batches, 0 for Spark's default), in its own process
// group, killed when the test ends. check reports the job's exit with its
// log's end; stop kills it.
func startSpark(t *testing.T, py, pg, jars, kafka, table string, trigger float64) (pid int, check func() error, stop func()) {
	t.Helper()
	dir := t.TempDir()
	args, env, err := spark.JobArgs(pg, jars, kafka, table, filepath.Join(dir, "checkpoint"), spark.Options{Trigger: trigger})
	if err != nil {
		t.Fatal(err)
	}
	cmd := spark.JobCommand(py, dir, env, args...)
	f, err := os.Create(filepath.Join(dir, "spark.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start spark_stream.py: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop = func() { once.Do(func() { killGroup(cmd.Process.Pid, func() error { return <-exited }) }) }
	t.Cleanup(stop)
	check = func() error {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(f.Name())
			return fmt.Errorf("spark_stream.py exited (%v); its log ends:\n%s", err, proctest.Tail(string(b), 4000))
		default:
			return nil
		}
	}
	return cmd.Process.Pid, check, stop
}
