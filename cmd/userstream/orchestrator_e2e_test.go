package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

const e2ePassword = "e2e-admin-password"

// TestDevSchedulesRuns is the orchestrator's dev acceptance: dev with
// --schedule '@every 3s' for 20 s gives at least 4 successful runs of
// user_automation, each with a log, and the sink grows; the REST API answers
// as Airflow's would to curl.
func TestDevSchedulesRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	dir := t.TempDir()
	web, connectAddr := freeAddr(t), freeAddr(t)
	sinkURL := "sqlite:" + filepath.Join(dir, "users.db")
	meta := "sqlite:" + filepath.Join(dir, "meta.db")
	dev := proctest.StartEnv(t, "dev", []string{"USERSTREAM_ADMIN_PASSWORD=" + e2ePassword}, "dev", "--data-dir", dir,
		"--kafka-addr", freeAddr(t), "--registry-addr", freeAddr(t), "--api-addr", freeAddr(t), "--metrics-addr", freeAddr(t),
		"--web-addr", web, "--connect-addr", connectAddr, "--schedule", "@every 3s", "--status-every", "2s")
	waitListening(t, dev, web)
	// dev runs a Kafka Connect worker too: its REST API answers, empty,
	// and refuses a change without a login.
	waitListening(t, dev, connectAddr)
	if resp, err := http.Get("http://" + connectAddr + "/connectors"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("GET /connectors on dev: %d %s, want 200 []", resp.StatusCode, body)
		}
	}
	if resp, err := http.Post("http://"+connectAddr+"/connectors", "application/json", strings.NewReader(`{"name":"x","config":{}}`)); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /connectors without a login: %d, want 401", resp.StatusCode)
	}
	first := testwait.For(t, 20*time.Second, "users in the sink", func() (int, bool) {
		n := count(t, sinkURL)
		return n, n > 0
	}, testwait.Every(time.Second))
	type runsOut struct {
		Runs []struct {
			ID    string `json:"dag_run_id"`
			State string `json:"state"`
			Type  string `json:"run_type"`
		} `json:"dag_runs"`
	}
	var res runsOut
	testwait.For(t, 20*time.Second, "4 successful runs of @every 3s", func() (string, bool) {
		out, errOut, code := runCmd(t, "dags", "runs", "user_automation", "--metadata", meta, "--json")
		if code != 0 {
			t.Fatalf("dags runs: exit %d: %s", code, errOut)
		}
		res = runsOut{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("dags runs --json printed %q: %v", out, err)
		}
		success := 0
		for _, r := range res.Runs {
			if r.State == "success" {
				success++
			}
		}
		return out, success >= 4
	}, testwait.Every(time.Second))
	for _, r := range res.Runs {
		if r.State != "success" {
			continue
		}
		logOut, errOut, code := runCmd(t, "dags", "logs", r.ID, "--metadata", meta)
		if code != 0 || !strings.Contains(logOut, "Marking task as SUCCESS") || !strings.Contains(logOut, "produced 1000") {
			t.Errorf("logs of %s: exit %d %s\n%s", r.ID, code, errOut, logOut)
		}
		if r.Type != "scheduled" || !strings.HasPrefix(r.ID, "scheduled__") {
			t.Errorf("run %s has type %s", r.ID, r.Type)
		}
	}
	if last := count(t, sinkURL); last <= first {
		t.Errorf("the sink did not grow: %d then %d", first, last)
	}
	if !strings.Contains(dev.Output(), "last run scheduled__") {
		t.Errorf("the status line does not show the last run:\n%s", tail(dev.Output(), 2000))
	}

	curlREST(t, "http://"+web, meta)
}

// curl runs curl and returns the status code and body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	out, err := exec.Command(bin, append([]string{"-s", "-w", "\n%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	code, _ := strconv.Atoi(s[i+1:])
	return code, s[:max(i, 0)]
}

// curlREST is the REST acceptance, with curl as a user of Airflow's API.
func curlREST(t *testing.T, base, meta string) {
	runs := base + "/api/v1/dags/user_automation/dagRuns"
	code, body := curl(t, "-u", "admin:"+e2ePassword, "-H", "Content-Type: application/json", "-X", "POST", runs, "-d", `{"conf": {"users": 50}}`)
	if code != 200 || !strings.Contains(body, `"dag_run_id": "manual__`) {
		t.Errorf("trigger with credentials: %d %s", code, body)
	}
	if code, body := curl(t, "-H", "Content-Type: application/json", "-X", "POST", runs, "-d", `{}`); code != 401 {
		t.Errorf("trigger without credentials: %d %s", code, body)
	}
	if code, body := curl(t, "-u", "admin:wrong", "-X", "POST", runs, "-d", `{}`); code != 401 {
		t.Errorf("trigger with a wrong password: %d %s", code, body)
	}
	code, body = curl(t, "-u", "admin:"+e2ePassword, "-X", "POST", runs, "-d", `{"conf": "not an object"}`)
	var prob map[string]any
	_ = json.Unmarshal([]byte(body), &prob)
	if code != 400 || prob["title"] == nil || prob["status"] != 400.0 || prob["detail"] == nil || prob["type"] == nil {
		t.Errorf("bad body: %d %s, want 400 with Airflow's error shape", code, body)
	}
	code, body = curl(t, "-u", "admin:"+e2ePassword, "-X", "PATCH", base+"/api/v1/dags/user_automation?update_mask=is_paused",
		"-H", "Content-Type: application/json", "-d", `{"is_paused": true}`)
	if code != 200 || !strings.Contains(body, `"is_paused": true`) {
		t.Errorf("pause: %d %s", code, body)
	}
	out, _, _ := runCmd(t, "dags", "list", "--metadata", meta, "--json")
	if !strings.Contains(out, `"is_paused": true`) {
		t.Errorf("dags list does not show the pause:\n%s", out)
	}
	// The CLI through the API says the same.
	out, errOut, code := runCmd(t, "dags", "list", "--api", base, "--password", e2ePassword)
	if code != 0 || !strings.Contains(out, "user_automation") || !strings.Contains(out, "true") {
		t.Errorf("dags list --api: exit %d %s\n%s", code, errOut, out)
	}
}

// TestTwoSchedulersOnePostgres: two `userstream scheduler` processes on one
// real PostgreSQL, @every 1s with catchup, for 30 s; one is SIGKILLed
// midway with a try running and started again. No (dag, logical date) has
// two runs, no slot is missed, and the killed one's running try is
// resolved after the restart.
func TestTwoSchedulersOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: no PostgreSQL to test against (make test starts one when PostgreSQL is installed)")
	}
	schemaName := "sched_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	meta := base + sep + "schema=" + schemaName
	s := startStack(t)
	startAt := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	args := func(host, addr string) []string {
		return []string{"scheduler", "--hostname", host, "--metadata", meta, "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
			"--source", s.SourceURL(), "--addr", addr, "--schedule", "@every 1s", "--catchup",
			"--start-date", startAt.Format(time.RFC3339), "--max-active-runs", "8", "--users-per-run", "0",
			"--run-duration", "4s", "--rate", "5", "--execution-timeout", "8s", "--retries", "1", "--retry-delay", "1s"}
	}
	env := []string{"USERSTREAM_ADMIN_PASSWORD=" + e2ePassword}
	procs := map[string]*proctest.Proc{
		"sched-a": proctest.StartEnv(t, "sched-a", env, args("sched-a", freeAddr(t))...),
		"sched-b": proctest.StartEnv(t, "sched-b", env, args("sched-b", freeAddr(t))...),
	}
	conn, err := pgx.Connect(context.Background(), base+sep+"search_path="+schemaName)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx := context.Background()

	// Kill, once runs succeed, the one that holds a running try (each try
	// takes ~4 s); it comes back under the same host name, as a restarted
	// pod does.
	victim := testwait.For(t, 60*time.Second, "2 successful runs and a try running on one of the schedulers", func() (string, bool) {
		var done int
		var host string
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM dag_run WHERE state = 'success'),
			coalesce((SELECT hostname FROM task_instance_try WHERE state = 'running' ORDER BY start_date DESC LIMIT 1), '')`).Scan(&done, &host)
		if err != nil {
			return err.Error(), false // the schedulers have not made their tables yet
		}
		if done < 2 || procs[host] == nil {
			return fmt.Sprintf("%d successful runs, newest running try on %q", done, host), false
		}
		return host, true
	}, testwait.Every(50*time.Millisecond))
	killedAt := time.Now()
	procs[victim].Kill(t)
	time.Sleep(2 * time.Second) // the killed one stays down 2 s: part of the fault
	proctest.StartEnv(t, victim+"-again", env, args(victim, freeAddr(t))...)
	// Every scheduler ticks (no leader): the survivor goes on creating
	// slots; the restarted one joins in.
	// Slots are created at most --max-active-runs ahead of the runs still
	// going, so the catchup drains at the runs' pace, slower on a loaded
	// machine. Wait for slots 30 s past the kill: a scheduler that stopped
	// creating slots never makes them.
	last := testwait.For(t, 65*time.Second, "scheduled runs 30 s past the kill, through the failover", func() (time.Time, bool) {
		var last time.Time
		if err := conn.QueryRow(ctx, `SELECT max(logical_date) FROM dag_run WHERE dag_id = 'user_automation' AND run_type = 'scheduled'`).Scan(&last); err != nil {
			t.Fatal(err)
		}
		return last, !last.Before(killedAt.Add(30 * time.Second))
	}, testwait.Every(500*time.Millisecond))

	var dup int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT dag_id, logical_date FROM dag_run GROUP BY 1, 2 HAVING count(*) > 1) d`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Errorf("%d (dag, logical date) pairs have more than one run", dup)
	}
	rows, err := conn.Query(ctx, `SELECT logical_date FROM dag_run WHERE dag_id = 'user_automation' AND run_type = 'scheduled' ORDER BY logical_date`)
	if err != nil {
		t.Fatal(err)
	}
	dates, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatal(err)
	}
	// Every second from the start date to a few seconds before the end
	// (the last intervals may not be created yet) has its run.
	if len(dates) == 0 || !dates[0].Equal(startAt) {
		t.Fatalf("runs start at %v, want the start date %v", dates, startAt)
	}
	for i := 1; i < len(dates); i++ {
		if gap := dates[i].Sub(dates[i-1]); gap != time.Second {
			t.Fatalf("slot missed between %v and %v", dates[i-1], dates[i])
		}
	}
	if got := dates[len(dates)-1]; got.Before(last) {
		t.Errorf("the runs end at %v, before the newest slot seen, %v", got, last)
	}
	// The killed process's running try: resolved by the survivor once the
	// killed one's heartbeat has stood still for 5 s, and its task retried.
	stuck := 0
	defer func() {
		if stuck == 0 {
			return
		}
		// The wait below failed: show River's side of the stuck tries.
		rows, _ := conn.Query(ctx, `SELECT id, state, attempt, max_attempts, attempted_at, coalesce(attempted_by::text, '') FROM river_job WHERE kind = 'userstream_task' AND state NOT IN ('completed') ORDER BY id`)
		for rows.Next() {
			var id int64
			var st, by string
			var at, max int
			var when any
			_ = rows.Scan(&id, &st, &at, &max, &when, &by)
			t.Logf("river job %d %s attempt %d/%d at %v by %s", id, st, at, max, when, by)
		}
		rows.Close()
	}()
	testwait.For(t, 40*time.Second, "no try started before the kill still running", func() (string, bool) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM task_instance_try WHERE state = 'running' AND start_date < $1`, killedAt).Scan(&stuck); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d running", stuck), stuck == 0
	}, testwait.Every(time.Second))
	var rescued int
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM task_instance_try WHERE error LIKE '%stopped without finishing%'`).Scan(&rescued)
	if rescued == 0 {
		rows, _ := conn.Query(ctx, `SELECT run_id, try_number, state, hostname, coalesce(error, ''), start_date, end_date FROM task_instance_try WHERE start_date BETWEEN $1 AND $2 ORDER BY start_date`, killedAt.Add(-6*time.Second), killedAt)
		for rows.Next() {
			var run, state, host, e string
			var try int
			var st, en any
			_ = rows.Scan(&run, &try, &state, &host, &e, &st, &en)
			t.Logf("try at the kill: %s #%d %s on %s err=%q %v..%v", run, try, state, host, e, st, en)
		}
		rows.Close()
		t.Errorf("no try was resolved as its worker's death: the killed scheduler held none, or it was never noticed")
	}
	t.Logf("FIGURES two schedulers: %d scheduled runs, %d duplicates, %d tries resolved after the kill of %s", len(dates), dup, rescued, victim)
}
