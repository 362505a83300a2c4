// Package peers sets userstream side by side with the engines it replaces
// (issue 22): Spark Structured Streaming, Apache Kafka Connect with
// Debezium's JDBC sink, Apache Airflow 3 and Apache Kafka, each pair on the
// same machine, the same data and the same PostgreSQL. It is a measurement,
// run by scripts/peers.sh, which sets USERSTREAM_PEERS_OUT; without it every
// comparison skips, saying so, so `go test ./...` never runs one (only the
// check of the /proc readers they measure with, TestProcAccounting). One driver
// file per comparison; each adds rows {name, ours, peer, unit, ratio} that
// TestMain writes to USERSTREAM_PEERS_OUT when the tests end.
package peers

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/proctest"
)

// Env names scripts/peers.sh sets.
const (
	outEnv   = "USERSTREAM_PEERS_OUT"   // the JSON file the results go to; unset: every test skips
	quickEnv = "USERSTREAM_PEERS_QUICK" // "1": the reduced form (--quick)
)

// Result is one row of the table. Ratio is how many times better ours is:
// ours/peer for rates, peer/ours for times and memory (Lower).
type Result struct {
	Name  string  `json:"name"`
	Ours  float64 `json:"ours"`
	Peer  float64 `json:"peer"`
	Unit  string  `json:"unit"`
	Ratio float64 `json:"ratio"`
	Peers string  `json:"peer_name"` // what the peer was, e.g. "Spark 4.0.0, 1 s trigger"
}

var results struct {
	sync.Mutex
	rows    []Result
	skipped []string
}

// record adds a row; lower says a smaller figure is better (seconds, MiB).
func record(t testing.TB, name, peer, unit string, ours, theirs float64, lower bool) {
	t.Helper()
	r := Result{Name: name, Peers: peer, Ours: ours, Peer: theirs, Unit: unit}
	switch {
	case lower && ours > 0:
		r.Ratio = theirs / ours
	case !lower && theirs > 0:
		r.Ratio = ours / theirs
	}
	t.Logf("%s: ours %.2f %s, %s %.2f %s (ratio %.2f)", name, ours, unit, peer, theirs, unit, r.Ratio)
	results.Lock()
	results.rows = append(results.rows, r)
	results.Unlock()
}

// skipRow says a comparison did not run and why; the table prints it.
func skipRow(t testing.TB, why string) {
	t.Helper()
	results.Lock()
	results.skipped = append(results.skipped, t.Name()+": "+why)
	results.Unlock()
	t.Skip(why)
}

// measured skips t unless scripts/peers.sh runs it, and tells whether the
// run is the quick form. It builds the userstream binary first, so no
// side's start time includes the build.
func measured(t testing.TB) (quick bool) {
	t.Helper()
	if os.Getenv(outEnv) == "" {
		t.Skip(outEnv + " is not set: a measurement of userstream against its peers, run by scripts/peers.sh, never by the suites")
	}
	proctest.Binary(t)
	return os.Getenv(quickEnv) == "1"
}

// size is full in the long form, quick in the quick one, unless the
// variable env (set by peers.sh's flags) gives a positive number.
func size(t testing.TB, env string, quick bool, full, small int) int {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", env, v)
		}
		return n
	}
	if quick {
		return small
	}
	return full
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeShared()
	if out := os.Getenv(outEnv); out != "" {
		results.Lock()
		// Empty lists, not null, when nothing was recorded or skipped.
		b, err := json.MarshalIndent(map[string]any{
			"quick": os.Getenv(quickEnv) == "1", "when": time.Now().UTC().Format(time.RFC3339),
			"results": append([]Result{}, results.rows...), "skipped": append([]string{}, results.skipped...),
		}, "", "  ")
		results.Unlock()
		if err == nil {
			err = os.WriteFile(out, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "peers: write", out+":", err)
			code = 1
		}
	}
	os.Exit(code)
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

// tree lists pids and every live descendant of theirs (a JVM a Python
// script started, the workers Airflow forks).
func tree(pids ...int) []int {
	parent := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[pp] = append(parent[pp], pid)
		}
	}
	var all []int
	for q := slices.Clone(pids); len(q) > 0; q = q[1:] {
		all = append(all, q[0])
		q = append(q, parent[q[0]]...)
	}
	return all
}

// rss sums the VmHWM of pids and their descendants, in MiB.
func rss(pids ...int) float64 {
	var sum float64
	for _, p := range tree(pids...) {
		sum += peakRSS(p)
	}
	return sum
}

// rssWatch samples rss(pids()) every half second until stop is called,
// which returns the largest sum seen: processes a side starts and ends
// (Airflow's task runners) count while they ran, and a side's processes
// are summed before they are stopped.
func rssWatch(pids func() []int) (stop func() float64) {
	done := make(chan struct{})
	res := make(chan float64, 1)
	go func() {
		var most float64
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			most = max(most, rss(pids()...))
			select {
			case <-done:
				res <- most
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var v float64
	return func() float64 {
		once.Do(func() { close(done); v = <-res })
		return v
	}
}

// percentile is the p-th percentile (0..100) of ds, nearest rank; 0 for
// none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// killGroup SIGKILLs a process group a test started and reaps its leader.
func killGroup(pid int, wait func() error) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = wait()
}

// cpuSeconds is the CPU time (user and system) pids and their
// descendants have used, in seconds: each live process once, and those
// that have ended through their parent's reaped-children times.
func cpuSeconds(pids ...int) float64 {
	var ticks float64
	seen := map[int]bool{}
	for _, p := range tree(pids...) {
		if !seen[p] {
			seen[p] = true
			ticks += procTicks(p)
		}
	}
	return ticks / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// procTicks is a process's utime+stime (and that of its reaped children)
// in clock ticks; 0 when it is gone.
func procTicks(pid int) float64 {
	// utime, stime, cutime, cstime are fields 14 to 17 of stat.
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	var sum float64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseFloat(v, 64)
		sum += n
	}
	return sum
}

// statFields are the fields of /proc/PID/stat after "pid (comm)", from
// state (field 3) on; nil when the process is gone. comm may hold spaces,
// so the fields start after the last ')'.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// pidsNamed are the live processes whose command name is comm (the
// PostgreSQL server's processes are all "postgres").
func pidsNamed(comm string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(b)) == comm {
			out = append(out, pid)
		}
	}
	return out
}

// machineCPUSeconds is the CPU time all processes have used since boot
// (every field of /proc/stat's cpu line but idle and iowait).
func machineCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var sum float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		sum += n
	}
	return sum / clockTicks
}
