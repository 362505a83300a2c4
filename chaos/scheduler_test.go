package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestSchedulerKill: two `userstream scheduler` processes on one
// PostgreSQL, `@every 1s` with catchup off (the default), for 40 s; at 15 s
// River's leader is SIGKILLed while it runs a try, and at 20 s it is
// started again under the same host name (a restarted pod). Every scheduler ticks, so the
// survivor goes on creating each slot: every 1-s slot of the window has
// exactly one run. The killed one's running try is resolved by the
// survivor within seconds of the kill (its heartbeat stood still), and its
// run ends. (Before, River's leader alone created slots: a dead leader's
// lease left 15-20 s of slots uncreated, and its tries stayed running
// until River's rescue, the execution timeout plus 10 s.)
func TestSchedulerKill(t *testing.T) {
	skipShort(t)
	meta := postgresSink(t)
	s := proctest.StartStack(t)
	t0 := time.Now()
	startAt := t0.UTC().Truncate(time.Second).Add(2 * time.Second)
	args := func(host string) []string {
		return []string{"scheduler", "--hostname", host, "--metadata", meta, "--addr", proctest.FreeAddr(t),
			"--brokers", s.Kafka, "--schema-registry", s.RegistryURL(), "--source", s.SourceURL(),
			"--schedule", "@every 1s", "--start-date", startAt.Format(time.RFC3339), "--max-active-runs", "16",
			"--users-per-run", "0", "--run-duration", "3s", "--rate", "5", "--retry-delay", "1s"}
	}
	env := []string{"USERSTREAM_ADMIN_PASSWORD=chaos-password-1"}
	procs := map[string]*proctest.Proc{
		"sched-a": proctest.StartEnv(t, "sched-a", env, args("sched-a")...),
		"sched-b": proctest.StartEnv(t, "sched-b", env, args("sched-b")...),
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// At 15 s, kill River's leader (each process's River client id begins
	// with its host name), once it runs a try.
	time.Sleep(time.Until(t0.Add(15 * time.Second))) // the fault's script: the kill at 15 s
	victim := testwait.For(t, 5*time.Second, "River's leader running a try", func() (string, bool) {
		var leader string
		var running int
		err := conn.QueryRow(ctx, `SELECT leader_id, (SELECT count(*) FROM task_instance_try t WHERE t.state = 'running'
			AND t.hostname = split_part(leader_id, '_', 1)) FROM river_leader`).Scan(&leader, &running)
		host, _, _ := strings.Cut(leader, "_")
		return host, err == nil && procs[host] != nil && running > 0
	})
	procs[victim].Kill(t)
	killedAt := time.Now()
	// The killed one's tries: none left running within 10 s of the kill.
	testwait.For(t, 10*time.Second, "no try of the killed scheduler running", func() (int, bool) {
		var running int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM task_instance_try WHERE state = 'running' AND hostname = $1 AND start_date < $2`,
			victim, killedAt).Scan(&running); err != nil {
			t.Fatal(err)
		}
		return running, running == 0
	}, testwait.Every(100*time.Millisecond))
	resolvedAfter := time.Since(killedAt)
	if resolvedAfter > 10*time.Second+100*time.Millisecond {
		t.Errorf("the killed scheduler's tries were resolved %.1fs after the kill, want within 10 s", resolvedAfter.Seconds())
	}
	time.Sleep(time.Until(t0.Add(20 * time.Second))) // the fault's script: the restart at 20 s
	procs[victim+"-again"] = proctest.StartEnv(t, victim+"-again", env, args(victim)...)
	time.Sleep(time.Until(t0.Add(40 * time.Second))) // the fault's script: the stop at 40 s
	end := time.Now()
	for name, p := range procs {
		if name != victim {
			sigterm(t, p)
		}
	}

	// The window: every slot from the start date to the last one whose
	// interval ended a second before the stop.
	last := end.UTC().Truncate(time.Second).Add(-2 * time.Second)
	rows, err := conn.Query(ctx, `SELECT logical_date, count(*) FROM dag_run WHERE dag_id = 'user_automation' AND run_type = 'scheduled'
		AND logical_date BETWEEN $1 AND $2 GROUP BY 1 ORDER BY 1`, startAt, last)
	if err != nil {
		t.Fatal(err)
	}
	type slot struct {
		at time.Time
		n  int
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slot, error) {
		var s slot
		return s, r.Scan(&s.at, &s.n)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := int(last.Sub(startAt)/time.Second) + 1
	missing, twice := 0, 0
	seen := map[time.Time]int{}
	for _, s := range slots {
		seen[s.at.UTC()] = s.n
		if s.n > 1 {
			twice++
		}
	}
	for at := startAt; !at.After(last); at = at.Add(time.Second) {
		if seen[at] == 0 {
			missing++
			t.Errorf("slot %s has no run (kill at +%.1fs, restart at +20s)", at.Format(time.TimeOnly), killedAt.Sub(startAt).Seconds())
		}
	}
	if twice > 0 {
		t.Errorf("%d slots have more than one run", twice)
	}
	// The killed try's run ends (its task retried by the survivor).
	testwait.For(t, 20*time.Second, "the runs of the killed scheduler's tries ended", func() (int, bool) {
		var unfinished int
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT r.run_id) FROM dag_run r JOIN task_instance_try t USING (dag_id, run_id)
			WHERE t.hostname = $1 AND t.start_date < $2 AND t.error LIKE '%no heartbeat%' AND r.state NOT IN ('success', 'failed')`,
			victim, killedAt).Scan(&unfinished); err != nil {
			t.Fatal(err)
		}
		return unfinished, unfinished == 0
	}, testwait.Every(500*time.Millisecond))
	var resolved int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM task_instance_try WHERE hostname = $1 AND error LIKE '%no heartbeat%'`, victim).Scan(&resolved); err != nil {
		t.Fatal(err)
	}
	if resolved == 0 {
		t.Errorf("no try of the killed scheduler was resolved as its death")
	}
	report(t, figures{Acked: int64(want), Stored: int64(len(slots)), Duplicates: int64(twice), Converge: resolvedAfter.Seconds(),
		Note: fmt.Sprintf("%d of %d 1-s slots have a run (%d missing); %d tries of the killed scheduler resolved %.1fs after the kill",
			len(slots), want, missing, resolved, resolvedAfter.Seconds())})
}
