package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/compat/spark"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// airflowPythonEnv names the interpreter of the virtual environment with
// apache-airflow (compat/requirements-airflow-server.txt), which
// scripts/peers.sh installs in the long form.
const airflowPythonEnv = "USERSTREAM_AIRFLOW_PYTHON"

// every is the trivial DAG's schedule on both sides: a run a second, as
// fast as either is asked to go; catchup off, so a scheduler that falls
// behind skips slots and completes fewer runs a minute.
const every = time.Second

// schedRun is what one scheduler did in the window and in the burst.
type schedRun struct {
	perMinute float64
	burst     float64       // runs completed a minute of a burst triggered at once
	p50, p99  time.Duration // a task's start minus its slot's due time
	rssMiB    float64
}

// TestSchedulerVsAirflow: our scheduler (`userstream scheduler`, its DAG
// user_automation made trivial: one user a run, into the embedded broker,
// which is not counted) and Apache Airflow 3 (`airflow standalone`:
// scheduler, DAG processor, API server and triggerer with the
// LocalExecutor), each with a PostgreSQL database of its own on
// USERSTREAM_TEST_POSTGRES's server for its metadata,
// running a DAG of one no-op task, both every second with catchup off,
// watched for USERSTREAM_PEERS_SCHED_SECONDS (120; 30 quick) once each
// runs its first task: runs completed a minute, delay from a slot's due
// time (its data interval's end) to its task's start (p50/p99, from each
// side's task instances in its REST API), and the peak RSS of all of each
// side's processes; then USERSTREAM_PEERS_SCHED_BURST runs (100; 30 quick)
// triggered at once through each REST API, timed to the last one's end.
// Without USERSTREAM_AIRFLOW_PYTHON (scripts/peers.sh installs Airflow and
// sets it) the comparison is skipped, saying so.
func TestSchedulerVsAirflow(t *testing.T) {
	quick := measured(t)
	secs := size(t, "USERSTREAM_PEERS_SCHED_SECONDS", quick, 120, 30)
	burst := size(t, "USERSTREAM_PEERS_SCHED_BURST", quick, 100, 30)
	window := time.Duration(secs) * time.Second
	py := os.Getenv(airflowPythonEnv)
	if py == "" {
		skipRow(t, airflowPythonEnv+" is not set: Apache Airflow is not installed (scripts/peers.sh installs it)")
	}
	pg := spark.PostgresURL(t)
	var ours, peer schedRun
	t.Run("ours", func(t *testing.T) { ours = runOurScheduler(t, createDatabase(t, pg), window, burst) })
	t.Run("Airflow", func(t *testing.T) { peer = runAirflow(t, py, createDatabase(t, pg), window, burst) })
	if t.Failed() {
		return
	}
	name := "Apache Airflow " + airflowVersion(t, py) + ", standalone, LocalExecutor, PostgreSQL"
	record(t, "scheduler: DAG runs completed a minute (one every second asked)", name, "runs/min", ours.perMinute, peer.perMinute, false)
	record(t, fmt.Sprintf("scheduler: DAG runs completed a minute (%d triggered at once via REST)", burst), name, "runs/min", ours.burst, peer.burst, false)
	record(t, "scheduler: delay from due time to task start, p50", name, "ms", ms(ours.p50), ms(peer.p50), true)
	record(t, "scheduler: delay from due time to task start, p99", name, "ms", ms(ours.p99), ms(peer.p99), true)
	record(t, "scheduler: peak RSS of all its processes", name, "MiB", ours.rssMiB, peer.rssMiB, true)
}

// createDatabase creates a database of the test's own on pg's server,
// dropped when the test ends, and returns its URL.
func createDatabase(t *testing.T, pg string) string {
	t.Helper()
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatalf("USERSTREAM_TEST_POSTGRES: %v", err)
	}
	name := fmt.Sprintf("peers_%d", time.Now().UnixNano())
	conn := pgConn(t, pg)
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func runOurScheduler(t *testing.T, metadata string, window time.Duration, burst int) schedRun {
	dir := t.TempDir()
	broker := proctest.FreeAddr(t)
	b := proctest.Start(t, "broker", "broker", "--addr", broker, "--registry-addr", proctest.FreeAddr(t),
		"--data-dir", filepath.Join(dir, "kafka"))
	proctest.WaitListening(t, b, broker)
	addr := proctest.FreeAddr(t)
	s := proctest.StartEnv(t, "scheduler", []string{"USERSTREAM_ADMIN_PASSWORD=" + peersPassword}, "scheduler",
		"--metadata", metadata, "--addr", addr, "--brokers", broker,
		"--schema-registry", "none", "--schedule", "@every "+every.String(), "--users-per-run", "1",
		"--run-duration", "0", "--max-active-runs", "16", "--start-date", time.Now().UTC().Format(time.RFC3339))
	proctest.WaitListening(t, s, addr)
	peak := rssWatch(func() []int { return []int{s.Pid()} })
	t.Cleanup(func() { peak() })
	api := restAPI{base: "http://" + addr + "/api/v1", dag: "user_automation", user: "admin", password: peersPassword}
	r := watch(t, api, window, s.Exited)
	r.burst = burstRuns(t, api, burst, s.Exited)
	r.rssMiB = peak()
	return r
}

// airflowDAG is the trivial DAG, as Airflow 3's task SDK writes it.
const airflowDAG = `from datetime import datetime, timedelta, timezone

from airflow.sdk import dag, task


@dag(dag_id="peers_trivial", schedule=timedelta(seconds=%d), start_date=datetime.now(timezone.utc) - timedelta(minutes=1),
     catchup=False, is_paused_upon_creation=False, max_active_runs=16)
def peers_trivial():
    @task
    def noop():
        return None

    noop()


peers_trivial()
`

func runAirflow(t *testing.T, py, metadata string, window time.Duration, burst int) schedRun {
	home := t.TempDir()
	dags := filepath.Join(home, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dags, "peers_trivial.py"), fmt.Appendf(nil, airflowDAG, int(every.Seconds())), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := proctest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(filepath.Join(filepath.Dir(py), "airflow"), "standalone")
	cmd.Dir = home
	bin := filepath.Dir(py)
	cmd.Env = append(os.Environ(),
		// standalone starts its parts as `airflow ...` from PATH.
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AIRFLOW_HOME="+home,
		"AIRFLOW__CORE__DAGS_FOLDER="+dags,
		"AIRFLOW__CORE__LOAD_EXAMPLES=False",
		"AIRFLOW__CORE__EXECUTOR=LocalExecutor",
		// PostgreSQL, as Airflow's docs set up anything but a try-out: on
		// SQLite its scheduler died of "database is locked" under a burst
		// of triggers.
		"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="+sqlAlchemyURL(t, metadata),
		// Two cores: as many task processes as cores.
		"AIRFLOW__CORE__PARALLELISM=2",
		"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True",
		"AIRFLOW__API__HOST=127.0.0.1",
		"AIRFLOW__API__PORT="+port,
		"AIRFLOW__API__BASE_URL=http://"+addr,
		"AIRFLOW__API__WORKERS=1",
		// Find the new DAG file at once rather than within 5 minutes.
		"AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5",
	)
	log, err := os.Create(filepath.Join(home, "standalone.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start airflow standalone: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Its processes are its group and their children, which may have
		// left the group: kill every one.
		for _, p := range tree(cmd.Process.Pid) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("--- airflow standalone's output ends:\n%s", proctest.Tail(string(b), 4000))
		}
	})
	peak := rssWatch(func() []int { return []int{cmd.Process.Pid} })
	t.Cleanup(func() { peak() })
	isDone := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	api := restAPI{base: "http://" + addr + "/api/v2", dag: "peers_trivial"}
	r := watch(t, api, window, isDone)
	r.burst = burstRuns(t, api, burst, isDone)
	r.rssMiB = peak()
	return r
}

// sqlAlchemyURL is a postgres:// URL as SQLAlchemy's psycopg2 dialect
// takes it, without its query: Airflow derives its asyncpg URL from it,
// and asyncpg takes no libpq parameter (sslmode); both then try TLS and
// fall back to plain, as libpq's default does.
func sqlAlchemyURL(t *testing.T, pg string) string {
	t.Helper()
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme, u.RawQuery = "postgresql+psycopg2", ""
	return u.String()
}

// restAPI is a DAG's runs in Airflow's REST API (v1: ours; v2: Airflow 3).
type restAPI struct {
	base, dag, user, password string
}

type dagRun struct {
	RunID           string     `json:"dag_run_id"`
	State           string     `json:"state"`
	DataIntervalEnd *time.Time `json:"data_interval_end"`
	EndDate         *time.Time `json:"end_date"`
}

func (a restAPI) get(ctx context.Context, path string, v any) error {
	return a.call(ctx, http.MethodGet, path, nil, v)
}

// call sends body (JSON, nil for none) and decodes a 200 answer into v.
func (a restAPI) call(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.user != "" {
		req.SetBasicAuth(a.user, a.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s: %s", method, a.base+path, resp.Status, b)}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// statusError is an answer other than 200.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// burstRuns triggers n runs of the DAG one after the other as fast as the
// API answers (each with a run id of its own and no logical date, which
// both APIs accept), waits (at most 10 minutes) for all of them to end,
// and returns how many completed a minute from the first trigger to the
// last run's end. The schedule keeps running beside them on both sides.
func burstRuns(t *testing.T, a restAPI, n int, exited func() bool) float64 {
	t.Helper()
	begin := time.Now()
	pending := map[string]bool{}
	retried := 0
	for i := range n {
		id := fmt.Sprintf("peers_burst_%d_%d", begin.UnixNano(), i)
		// A server error is asked again, as a user's script would (Airflow
		// on SQLite answers 500 "Database error" while its scheduler holds
		// the database); the retries are counted and logged.
		testwait.For(t, time.Minute, fmt.Sprintf("run %d of %d triggered", i+1, n), func() (string, bool) {
			var r dagRun
			err := a.call(t.Context(), http.MethodPost, "/dags/"+a.dag+"/dagRuns",
				map[string]any{"dag_run_id": id, "logical_date": nil, "conf": map[string]any{}}, &r)
			if err == nil {
				return id, true
			}
			var se *statusError
			if !errors.As(err, &se) || se.code < 500 {
				if retried > 0 && a.get(t.Context(), "/dags/"+a.dag+"/dagRuns/"+url.PathEscape(id), &r) == nil {
					return id, true // an answer lost to a 500 that had created it
				}
				t.Fatalf("trigger run %d of %d: %v", i+1, n, err)
			}
			retried++
			return err.Error(), false
		}, testwait.Every(200*time.Millisecond))
		pending[id] = true
	}
	var last time.Time
	testwait.For(t, 10*time.Minute, fmt.Sprintf("the %d runs triggered at once to end", n), func() (int, bool) {
		if exited() {
			t.Fatalf("the scheduler exited during the burst")
		}
		for id := range pending {
			var r dagRun
			if err := a.get(t.Context(), "/dags/"+a.dag+"/dagRuns/"+url.PathEscape(id), &r); err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
			switch r.State {
			case "success":
				if r.EndDate == nil {
					t.Fatalf("run %s succeeded without an end date", id)
				}
				if r.EndDate.After(last) {
					last = *r.EndDate
				}
				delete(pending, id)
			case "failed":
				t.Fatalf("run %s failed", id)
			}
		}
		return len(pending), len(pending) == 0
	}, testwait.Every(500*time.Millisecond))
	perMinute := float64(n) / last.Sub(begin).Minutes()
	t.Logf("%s: %d runs triggered at once ended %s after the first trigger (%.0f a minute; %d triggers answered 5xx and were sent again)",
		a.dag, n, last.Sub(begin), perMinute, retried)
	return perMinute
}

// runs lists all the DAG's runs, a page of 100 at a time (both APIs cap a
// page at 100, as Airflow's maximum_page_limit does).
func (a restAPI) runs(ctx context.Context) ([]dagRun, error) {
	var all []dagRun
	for {
		var page struct {
			Runs  []dagRun `json:"dag_runs"`
			Total int      `json:"total_entries"`
		}
		if err := a.get(ctx, fmt.Sprintf("/dags/%s/dagRuns?limit=100&offset=%d", a.dag, len(all)), &page); err != nil {
			return nil, err
		}
		all = append(all, page.Runs...)
		if len(page.Runs) == 0 || len(all) >= page.Total {
			return all, nil
		}
	}
}

// taskStart is the start of the run's first task instance.
func (a restAPI) taskStart(ctx context.Context, runID string) (time.Time, error) {
	var out struct {
		TIs []struct {
			StartDate *time.Time `json:"start_date"`
		} `json:"task_instances"`
	}
	if err := a.get(ctx, "/dags/"+a.dag+"/dagRuns/"+url.PathEscape(runID)+"/taskInstances", &out); err != nil {
		return time.Time{}, err
	}
	if len(out.TIs) == 0 || out.TIs[0].StartDate == nil {
		return time.Time{}, fmt.Errorf("run %s has no started task", runID)
	}
	return *out.TIs[0].StartDate, nil
}

// watch waits (at most 10 minutes) for the DAG's first successful run,
// then watches the window and returns the runs completed a minute among
// those due in it and their tasks' delays.
func watch(t *testing.T, a restAPI, window time.Duration, exited func() bool) schedRun {
	t.Helper()
	testwait.For(t, 10*time.Minute, "a first successful run of "+a.dag, func() (string, bool) {
		if exited() {
			t.Fatalf("the scheduler exited before a first run of %s", a.dag)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		runs, err := a.runs(ctx)
		if err != nil {
			return err.Error(), false
		}
		for _, r := range runs {
			if r.State == "success" {
				return r.RunID, true
			}
		}
		return fmt.Sprint(len(runs), " runs, none successful"), false
	}, testwait.Every(time.Second))
	from := time.Now()
	testwait.For(t, window+time.Minute, "the window of "+window.String(), func() (time.Duration, bool) {
		if exited() {
			t.Fatalf("the scheduler exited while watched")
		}
		return time.Since(from), time.Since(from) >= window
	}, testwait.Every(time.Second))
	to := from.Add(window)
	// Runs due in the window may still be under way: wait for them.
	settle := time.Now().Add(30 * time.Second)
	var done []dagRun
	testwait.For(t, time.Minute, "the runs due in the window to end", func() (int, bool) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		runs, err := a.runs(ctx)
		if err != nil {
			t.Fatalf("list runs: %v", err)
		}
		done = done[:0]
		open := 0
		for _, r := range runs {
			if r.DataIntervalEnd == nil || r.DataIntervalEnd.Before(from) || !r.DataIntervalEnd.Before(to) {
				continue
			}
			switch r.State {
			case "success":
				done = append(done, r)
			case "queued", "running":
				open++
			}
		}
		return open, open == 0 || time.Now().After(settle)
	}, testwait.Every(time.Second))
	var delays []time.Duration
	for _, r := range done {
		start, err := a.taskStart(t.Context(), r.RunID)
		if err != nil {
			t.Fatalf("task of run %s: %v", r.RunID, err)
		}
		delays = append(delays, start.Sub(*r.DataIntervalEnd))
	}
	res := schedRun{perMinute: float64(len(done)) / window.Minutes(), p50: percentile(delays, 50), p99: percentile(delays, 99)}
	t.Logf("%s: %d runs completed of those due in %s (%.1f a minute); delay p50 %s p99 %s",
		a.dag, len(done), window, res.perMinute, res.p50, res.p99)
	return res
}

// airflowVersion is what `airflow version` prints.
func airflowVersion(t *testing.T, py string) string {
	out, err := exec.Command(filepath.Join(filepath.Dir(py), "airflow"), "version").Output()
	if err != nil {
		return "3 (version unknown: " + err.Error() + ")"
	}
	// The last line: it may log warnings first.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
