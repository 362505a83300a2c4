package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/testwait"
)

func openStore(t *testing.T) scheduler.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// start runs a scheduler on a fresh SQLite store until the test ends.
func start(t *testing.T, st scheduler.Store, dags ...*scheduler.DAG) (*scheduler.Scheduler, *scheduler.Metrics) {
	t.Helper()
	m := scheduler.NewMetrics(prometheus.NewRegistry())
	return startWith(t, scheduler.Config{Store: st, DAGs: dags, TickEvery: 200 * time.Millisecond, Metrics: m,
		DefaultExecutionTimeout: 20 * time.Second}), m
}

// startWith runs a scheduler of cfg until the test ends.
func startWith(t *testing.T, cfg scheduler.Config) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

func dag(id string, task scheduler.TaskFunc) *scheduler.DAG {
	return &scheduler.DAG{DagID: id, Owner: "test", Schedule: "none", StartDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		MaxActiveRuns: 4, DefaultArgs: scheduler.DefaultArgs{RetryDelay: 20 * time.Millisecond},
		Tasks: []scheduler.Task{{TaskID: "work", Run: task}}}
}

func waitRun(t *testing.T, st scheduler.Store, dagID, runID string, states ...scheduler.RunState) scheduler.Run {
	t.Helper()
	return testwait.For(t, 30*time.Second, fmt.Sprintf("run %s %v", runID, states), func() (scheduler.Run, bool) {
		r, err := st.GetRun(t.Context(), dagID, runID)
		if err != nil {
			t.Fatal(err)
		}
		return r, slices.Contains(states, r.State)
	}, testwait.Every(20*time.Millisecond))
}

// ticked waits until s has run a whole tick that began after the call: the
// second to end after it, as ticks run one at a time.
func ticked(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	since := time.Now()
	first := testwait.For(t, 30*time.Second, "a tick to end", func() (time.Time, bool) {
		last := s.LastTick()
		return last, last.After(since)
	}, testwait.Every(20*time.Millisecond))
	testwait.For(t, 30*time.Second, "a whole tick after "+since.Format(time.StampMilli), func() (time.Time, bool) {
		last := s.LastTick()
		return last, last.After(first)
	}, testwait.Every(20*time.Millisecond))
}

// TestFailTwiceThenSucceed: a task failing twice then succeeding on its
// third try leaves three tries (up_for_retry, up_for_retry, success) with a
// log each, and a successful run.
func TestFailTwiceThenSucceed(t *testing.T) {
	var calls atomic.Int32
	d := dag("flaky", func(_ context.Context, tc scheduler.TaskContext) error {
		n := calls.Add(1)
		tc.Log.Info("doing the work", "call", n)
		if n < 3 {
			return fmt.Errorf("scripted failure %d", n)
		}
		return nil
	})
	d.DefaultArgs.Retries = 2
	st := openStore(t)
	s, m := start(t, st, d)
	run, err := s.Service().Trigger(t.Context(), "flaky", nil, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.RunID, "manual__") {
		t.Errorf("run id %q, want manual__...", run.RunID)
	}
	waitRun(t, st, "flaky", run.RunID, scheduler.RunSuccess)
	tries, err := st.ListTries(t.Context(), "flaky", run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	want := []scheduler.TaskState{scheduler.TaskUpForRetry, scheduler.TaskUpForRetry, scheduler.TaskSuccess}
	if len(tries) != 3 {
		t.Fatalf("%d tries, want 3: %+v", len(tries), tries)
	}
	for i, tr := range tries {
		if tr.TryNumber != i+1 || tr.State != want[i] || tr.MaxTries != 3 {
			t.Errorf("try %d: number %d state %s max %d, want %d %s 3", i, tr.TryNumber, tr.State, tr.MaxTries, i+1, want[i])
		}
		if i < 2 && !strings.Contains(tr.Error, fmt.Sprintf("scripted failure %d", i+1)) {
			t.Errorf("try %d error %q lacks the task's error", i+1, tr.Error)
		}
		log, err := st.GetLog(t.Context(), "flaky", run.RunID, "work", tr.TryNumber)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{fmt.Sprintf("Starting attempt %d of 3", i+1), fmt.Sprintf("doing the work call=%d", i+1)} {
			if !strings.Contains(log, w) {
				t.Errorf("log of try %d lacks %q:\n%s", i+1, w, log)
			}
		}
	}
	if got := testutil.ToFloat64(m.TriesEnded.WithLabelValues("flaky", string(scheduler.TaskUpForRetry))); got != 2 {
		t.Errorf("up_for_retry tries metric = %v, want 2", got)
	}
	if got := testutil.CollectAndCount(m.ScheduleDelay); got != 1 {
		t.Errorf("schedule delay has %d series, want 1", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(scheduler.NewRunStateCollector(st))
	const wantRuns = `
# HELP userstream_scheduler_dag_runs DAG runs in the metadata store, by DAG and state (queued, running, success, failed).
# TYPE userstream_scheduler_dag_runs gauge
userstream_scheduler_dag_runs{dag_id="flaky",state="failed"} 0
userstream_scheduler_dag_runs{dag_id="flaky",state="queued"} 0
userstream_scheduler_dag_runs{dag_id="flaky",state="running"} 0
userstream_scheduler_dag_runs{dag_id="flaky",state="success"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantRuns)); err != nil {
		t.Error(err)
	}
}

// TestOutOfTries: a task that always fails fails its run after
// retries+1 tries, the last one failed.
func TestOutOfTries(t *testing.T) {
	d := dag("broken", func(context.Context, scheduler.TaskContext) error { return errors.New("always") })
	d.DefaultArgs.Retries = 1
	st := openStore(t)
	s, _ := start(t, st, d)
	run, _ := s.Service().Trigger(t.Context(), "broken", nil, time.Time{}, "")
	waitRun(t, st, "broken", run.RunID, scheduler.RunFailed)
	tries, _ := st.ListTries(t.Context(), "broken", run.RunID)
	if len(tries) != 2 || tries[0].State != scheduler.TaskUpForRetry || tries[1].State != scheduler.TaskFailed {
		t.Fatalf("tries %+v, want up_for_retry then failed", tries)
	}
}

// TestExecutionTimeout: a try running past execution_timeout fails with a
// message saying so.
func TestExecutionTimeout(t *testing.T) {
	d := dag("slow", func(ctx context.Context, _ scheduler.TaskContext) error {
		<-ctx.Done()
		return ctx.Err()
	})
	d.DefaultArgs.ExecutionTimeout = 300 * time.Millisecond
	st := openStore(t)
	s, _ := start(t, st, d)
	run, _ := s.Service().Trigger(t.Context(), "slow", nil, time.Time{}, "")
	waitRun(t, st, "slow", run.RunID, scheduler.RunFailed)
	tries, _ := st.ListTries(t.Context(), "slow", run.RunID)
	if len(tries) != 1 || !strings.Contains(tries[0].Error, "execution_timeout") {
		t.Fatalf("tries %+v, want one failed by execution_timeout", tries)
	}
}

// TestCatchupAndMaxActiveRuns: a DAG every second with catchup from 6 s
// ago gets a run for each missed interval, never more than max_active_runs
// running at once.
func TestCatchupAndMaxActiveRuns(t *testing.T) {
	var running, most atomic.Int32
	d := dag("frequent", func(context.Context, scheduler.TaskContext) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(150 * time.Millisecond) // the task's work, so that runs overlap
		return nil
	})
	d.Schedule, d.Catchup, d.MaxActiveRuns = "@every 1s", true, 2
	d.StartDate = time.Now().UTC().Truncate(time.Second).Add(-6 * time.Second)
	st := openStore(t)
	start(t, st, d)
	testwait.For(t, 30*time.Second, "6 successful runs, one per missed interval", func() (int, bool) {
		_, n, err := st.ListRuns(t.Context(), scheduler.RunFilter{DagID: "frequent", States: []scheduler.RunState{scheduler.RunSuccess}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return n, n >= 6
	})
	if got := most.Load(); got > 2 {
		t.Errorf("%d runs ran at once; max_active_runs is 2", got)
	}
	runs, _, _ := st.ListRuns(t.Context(), scheduler.RunFilter{DagID: "frequent", OrderBy: "logical_date"})
	for i := 1; i < len(runs); i++ {
		if got := runs[i].LogicalDate.Sub(runs[i-1].LogicalDate); got != time.Second {
			t.Fatalf("runs %s and %s are %s apart: a slot was missed or doubled", runs[i-1].RunID, runs[i].RunID, got)
		}
	}
	if !runs[0].LogicalDate.Equal(d.StartDate) || runs[0].RunType != scheduler.RunScheduled ||
		runs[0].RunID != scheduler.RunID(scheduler.RunScheduled, d.StartDate) {
		t.Errorf("first run %+v, want the scheduled run of the start date", runs[0])
	}
}

// TestPausedDAGWaits: a paused DAG gets no scheduled run, and a run
// triggered by hand waits, queued, until the DAG is unpaused.
func TestPausedDAGWaits(t *testing.T) {
	var ran atomic.Int32
	d := dag("sleepy", func(context.Context, scheduler.TaskContext) error { ran.Add(1); return nil })
	d.Schedule, d.Catchup, d.IsPausedUponCreation = "@every 1s", true, true
	d.StartDate = time.Now().UTC().Add(-3 * time.Second)
	st := openStore(t)
	s, _ := start(t, st, d)
	run, err := s.Service().Trigger(t.Context(), "sleepy", nil, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	ticked(t, s) // a tick that saw the trigger and would have started the run
	_, n, _ := st.ListRuns(t.Context(), scheduler.RunFilter{DagID: "sleepy", RunTypes: []scheduler.RunType{scheduler.RunScheduled}})
	if n != 0 || ran.Load() != 0 {
		t.Fatalf("a paused DAG got %d scheduled runs and ran %d tasks", n, ran.Load())
	}
	if r, _ := st.GetRun(t.Context(), "sleepy", run.RunID); r.State != scheduler.RunQueued {
		t.Fatalf("the triggered run is %s while paused, want queued", r.State)
	}
	if _, err := s.Service().SetPaused(t.Context(), "sleepy", false); err != nil {
		t.Fatal(err)
	}
	waitRun(t, st, "sleepy", run.RunID, scheduler.RunSuccess)
}

// TestClearRunsAgain: clearing a finished run queues it; its task runs
// with the next try number and the earlier try stays in the history.
func TestClearRunsAgain(t *testing.T) {
	var mu sync.Mutex
	var seeds []string
	d := dag("again", func(_ context.Context, tc scheduler.TaskContext) error {
		mu.Lock()
		seeds = append(seeds, tc.Seed)
		mu.Unlock()
		return nil
	})
	st := openStore(t)
	s, _ := start(t, st, d)
	run, _ := s.Service().Trigger(t.Context(), "again", nil, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), "")
	waitRun(t, st, "again", run.RunID, scheduler.RunSuccess)
	if _, err := s.Service().Clear(t.Context(), "again", run.RunID); err != nil {
		t.Fatal(err)
	}
	waitRun(t, st, "again", run.RunID, scheduler.RunSuccess)
	tries, _ := st.ListTries(t.Context(), "again", run.RunID)
	if len(tries) != 2 || tries[1].TryNumber != 2 {
		t.Fatalf("tries after a clear: %+v, want tries 1 and 2", tries)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seeds) != 2 || seeds[0] != seeds[1] || seeds[0] == "" {
		t.Errorf("seeds of the two tries %v: a cleared run must fetch the same users", seeds)
	}
}

// TestTriggerConfAndDuplicates: a DAG's ConfCheck refuses a bad conf with
// ErrInvalid, and a logical date already taken is ErrExists.
func TestTriggerConfAndDuplicates(t *testing.T) {
	d := dag("conf", func(context.Context, scheduler.TaskContext) error { return nil })
	d.ConfCheck = func(c map[string]any) error {
		if _, ok := c["bogus"]; ok {
			return errors.New("unknown key bogus")
		}
		return nil
	}
	st := openStore(t)
	s, _ := start(t, st, d)
	if _, err := s.Service().Trigger(t.Context(), "conf", map[string]any{"bogus": 1}, time.Time{}, ""); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("bad conf: %v, want ErrInvalid", err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Service().Trigger(t.Context(), "conf", nil, at, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service().Trigger(t.Context(), "conf", nil, at, "other"); !errors.Is(err, scheduler.ErrExists) {
		t.Fatalf("second run at the same logical date: %v, want ErrExists", err)
	}
	if _, err := s.Service().Trigger(t.Context(), "nope", nil, time.Time{}, ""); !errors.Is(err, scheduler.ErrNotFound) {
		t.Fatalf("unknown DAG: %v, want ErrNotFound", err)
	}
}

// TestBackfill creates one run per interval of the range, skips those that
// exist, and runs them.
func TestBackfill(t *testing.T) {
	d := dag("daily", func(context.Context, scheduler.TaskContext) error { return nil })
	d.Schedule = "@daily"
	st := openStore(t)
	s, _ := start(t, st, d)
	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	if _, err := s.Service().Trigger(t.Context(), "daily", nil, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), ""); err != nil {
		t.Fatal(err)
	}
	created, skipped, err := s.Service().Backfill(t.Context(), "daily", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 4 || len(skipped) != 1 || !skipped[0].Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("created %d, skipped %v; want 4 and 2026-03-03", len(created), skipped)
	}
	if created[0].RunID != "backfill__2026-03-01T00:00:00+00:00" || !created[0].DataIntervalEnd.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("first backfill run %+v", created[0])
	}
	for _, r := range created {
		waitRun(t, st, "daily", r.RunID, scheduler.RunSuccess)
	}
	if _, _, err := s.Service().Backfill(t.Context(), "daily", to, from); !errors.Is(err, scheduler.ErrInvalid) {
		t.Errorf("backwards range: %v, want ErrInvalid", err)
	}
}

// TestRetryDelay: retry_delay, doubled with exponential backoff, capped.
func TestRetryDelay(t *testing.T) {
	a := scheduler.DefaultArgs{RetryDelay: 10 * time.Second}
	if got := scheduler.RetryDelay(a, 3); got != 10*time.Second {
		t.Errorf("plain delay after try 3 = %s", got)
	}
	a.RetryExponentialBackoff, a.MaxRetryDelay = true, time.Minute
	for try, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 4: time.Minute, 9: time.Minute} {
		if got := scheduler.RetryDelay(a, try); got != want {
			t.Errorf("exponential delay after try %d = %s, want %s", try, got, want)
		}
	}
}

// TestDeadSchedulersTryIsResolved: two schedulers on one store; the one
// running a try stops heartbeating (as a SIGKILLed process does) while the
// try hangs. The other resolves the try within seconds, not after River's
// rescue (the execution timeout and more): up for retry, with the reason,
// and the next try runs and the run succeeds. The first process's late end
// of the try is not recorded over that.
func TestDeadSchedulersTryIsResolved(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "meta.db")
	open := func() scheduler.Store {
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	var calls atomic.Int32
	d := func() *scheduler.DAG {
		d := dag("hang", func(ctx context.Context, tc scheduler.TaskContext) error {
			if calls.Add(1) == 1 {
				<-ctx.Done() // the first try hangs until its process stops
				return ctx.Err()
			}
			return nil
		})
		d.DefaultArgs.Retries = 1
		return d
	}
	stA := open()
	a, _ := start(t, stA, d())
	run, err := a.Service().Trigger(t.Context(), "hang", nil, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitTry := func(st scheduler.Store, n int, state scheduler.TaskState) scheduler.Try {
		t.Helper()
		return testwait.For(t, 30*time.Second, fmt.Sprintf("try %d %s", n, state), func() (scheduler.Try, bool) {
			tries, err := st.ListTries(t.Context(), "hang", run.RunID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range tries {
				if tr.TryNumber == n {
					return tr, tr.State == state
				}
			}
			return scheduler.Try{}, false
		})
	}
	waitTry(stA, 1, scheduler.TaskRunning)
	stB := open()
	start(t, stB, d())
	scheduler.StopBeating(a)
	died := time.Now()
	resolved := waitTry(stB, 1, scheduler.TaskUpForRetry)
	took := time.Since(died)
	if took > 10*time.Second {
		t.Errorf("the dead scheduler's try was resolved %s after it died, want within 10 s", took)
	}
	if !strings.Contains(resolved.Error, "stopped without finishing it: no heartbeat for") {
		t.Errorf("the resolved try's error %q does not say its scheduler died", resolved.Error)
	}
	waitRun(t, stB, "hang", run.RunID, scheduler.RunSuccess)
	if got := waitTry(stB, 2, scheduler.TaskSuccess); got.TryNumber != 2 {
		t.Fatalf("try 2: %+v", got)
	}
	// The first process stops: its hung try ends, and must not be recorded
	// over the resolution.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := waitTry(stB, 1, scheduler.TaskUpForRetry); got.Error != resolved.Error {
		t.Errorf("try 1 after the dead process stopped: %+v", got)
	}
	t.Logf("resolved %.1fs after its scheduler stopped heartbeating", took.Seconds())
}

// TestNudgedRuns: a run queued in this process (triggered) starts at
// once, and when a run ends a queued one takes its place at once, both
// within max_active_runs, with no tick between: the tick after the first
// is an hour away.
func TestNudgedRuns(t *testing.T) {
	var running, most atomic.Int32
	d := dag("burst", func(context.Context, scheduler.TaskContext) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return nil
	})
	d.MaxActiveRuns = 1
	st := openStore(t)
	s := startWith(t, scheduler.Config{Store: st, DAGs: []*scheduler.DAG{d}, TickEvery: time.Hour,
		Metrics: scheduler.NewMetrics(prometheus.NewRegistry())})
	first := testwait.For(t, 30*time.Second, "the first tick", func() (time.Time, bool) {
		return s.LastTick(), !s.LastTick().IsZero()
	}, testwait.Every(10*time.Millisecond))
	var ids []string
	for i := range 3 {
		r, err := s.Service().Trigger(t.Context(), "burst", nil, time.Time{}, fmt.Sprintf("burst_%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	for _, id := range ids {
		waitRun(t, st, "burst", id, scheduler.RunSuccess)
	}
	if !s.LastTick().Equal(first) {
		t.Fatalf("a second tick ran at %s: the test cannot tell a nudge from a tick", s.LastTick())
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d runs' tasks ran at once, want max_active_runs 1", m)
	}
}
