package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
)

// Defaults of Config.
const (
	DefaultTickEvery        = time.Second
	DefaultExecutionTimeout = 10 * time.Minute
	DefaultMaxActiveRuns    = 16
	DefaultWorkers          = 4
	DefaultRetryDelay       = 5 * time.Minute
	// rescueMargin is how long past the longest execution timeout River
	// rescues a job still marked running; tries of a process that stopped
	// heartbeating are resolved long before (deadAfter).
	rescueMargin = 10 * time.Second
	// heartbeatEvery is how often a scheduler process records that it is
	// alive; deadAfter is how long the others wait for its heartbeat to
	// move before they resolve the tries it was running (Airflow's
	// scheduler_zombie_task_threshold, 300 s there).
	heartbeatEvery = time.Second
	deadAfter      = 5 * time.Second
	// maxCatchup bounds the runs one tick creates for one DAG.
	maxCatchup = 1000
)

// Config says how a Scheduler runs.
type Config struct {
	Store Store
	DAGs  []*DAG
	// Hostname is recorded on every try [os.Hostname()].
	Hostname string
	// TickEvery is how often each scheduler process looks for due runs,
	// starts queued ones and resolves tries whose process died [1s]. Ticks
	// fall just after each multiple of it, so a slot is looked at as soon
	// as it is due.
	TickEvery time.Duration
	// DefaultExecutionTimeout bounds a try whose DAG sets none [10m]. A
	// try whose worker died is rescued (failed and retried by policy) once
	// it has run longer than the longest execution timeout plus 10 s.
	DefaultExecutionTimeout time.Duration
	// Workers is how many tries run at once in this process [4].
	Workers int
	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the clock [time.Now]; tests move it.
	Now func() time.Time
	// RiverLogger receives River's own logs [discard below warn].
	RiverLogger *slog.Logger
}

// Scheduler creates DAG runs when they are due, starts them, runs their
// tasks through River and keeps their state in the Store. Several
// schedulers may share one PostgreSQL store, all active, as Airflow 2's
// are: each one ticks, the store's unique key on (dag, logical date)
// refuses a second run for one slot and ClaimRun lets one of them start a
// run, and any of them runs tasks. Each records a heartbeat; when one's
// stops moving for deadAfter (a killed process), the others resolve the
// tries it was running. Losing one costs nothing else.
type Scheduler struct {
	cfg    Config
	store  Store
	dags   map[string]*DAG
	scheds map[string]Schedule
	log    *slog.Logger
	queue  Queue

	tickMu   sync.Mutex   // one tick at a time in this process
	lastTick atomic.Int64 // unix nanos of the last tick this process ran

	id       string // this process's River client id and job row
	started  time.Time
	live     liveness
	stopping atomic.Bool // Stop was called: no more ticks
	stopLoop context.CancelFunc
	loopDone chan struct{}
	// nudged is signalled (nudge) when this process queues a run or ends
	// one, so queued runs start at once rather than on the next tick: a
	// burst of triggered runs goes through at the pace of its tasks, not
	// max_active_runs a tick.
	nudged chan struct{}
}

// LastTick is when this process last ran a tick (zero: never), the
// scheduler's heartbeat.
func (s *Scheduler) LastTick() time.Time {
	if n := s.lastTick.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// New checks the DAGs (unique ids, schedules that parse, at least one task
// with a unique id, a start date) and returns a Scheduler that is not yet
// started.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil {
		return nil, errors.New("scheduler: no metadata store")
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = DefaultTickEvery
	}
	if cfg.DefaultExecutionTimeout <= 0 {
		cfg.DefaultExecutionTimeout = DefaultExecutionTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	s := &Scheduler{cfg: cfg, store: cfg.Store, dags: map[string]*DAG{}, scheds: map[string]Schedule{}, log: cfg.Logger,
		nudged: make(chan struct{}, 1)}
	for _, d := range cfg.DAGs {
		if err := Validate(d); err != nil {
			return nil, err
		}
		if _, dup := s.dags[d.DagID]; dup {
			return nil, fmt.Errorf("scheduler: DAG %q is defined twice", d.DagID)
		}
		sched, err := ParseSchedule(d.Schedule, d.Timezone)
		if err != nil {
			return nil, fmt.Errorf("scheduler: DAG %q: %w", d.DagID, err)
		}
		if d.MaxActiveRuns <= 0 {
			d.MaxActiveRuns = DefaultMaxActiveRuns
		}
		if d.DefaultArgs.RetryDelay <= 0 {
			d.DefaultArgs.RetryDelay = DefaultRetryDelay
		}
		s.dags[d.DagID], s.scheds[d.DagID] = d, sched
	}
	return s, nil
}

// Validate checks one DAG's definition; errors name the DAG and the field.
func Validate(d *DAG) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("DAG %q: %s: %s", d.DagID, field, fmt.Sprintf(format, args...))
	}
	switch {
	case d == nil:
		return errors.New("scheduler: nil DAG")
	case !validID(d.DagID):
		return fmt.Errorf("DAG %q: dag_id: use letters, digits, '-', '_' and '.', at most 250", d.DagID)
	case d.StartDate.IsZero():
		return bad("start_date", "required")
	case !d.EndDate.IsZero() && d.EndDate.Before(d.StartDate):
		return bad("end_date", "%s is before start_date %s", d.EndDate.Format(time.RFC3339), d.StartDate.Format(time.RFC3339))
	case len(d.Tasks) == 0:
		return bad("tasks", "a DAG needs at least one task")
	case d.DefaultArgs.Retries < 0:
		return bad("retries", "%d is negative", d.DefaultArgs.Retries)
	case d.DefaultArgs.RetryDelay < 0 || d.DefaultArgs.MaxRetryDelay < 0 || d.DefaultArgs.ExecutionTimeout < 0:
		return bad("default_args", "durations must not be negative")
	case d.MaxActiveRuns < 0:
		return bad("max_active_runs", "%d is negative", d.MaxActiveRuns)
	}
	if _, err := ParseSchedule(d.Schedule, d.Timezone); err != nil {
		return bad("schedule", "%v", err)
	}
	seen := map[string]bool{}
	for _, t := range d.Tasks {
		if !validID(t.TaskID) || seen[t.TaskID] {
			return bad("tasks", "task id %q is empty, malformed or repeated", t.TaskID)
		}
		if t.Run == nil {
			return bad("tasks", "task %q has nothing to run", t.TaskID)
		}
		seen[t.TaskID] = true
	}
	return nil
}

func validID(s string) bool {
	if s == "" || len(s) > 250 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Hostname is the name recorded on this process's tries.
func (s *Scheduler) Hostname() string { return s.cfg.Hostname }

// DAG returns a DAG's definition, or nil.
func (s *Scheduler) DAG(dagID string) *DAG { return s.dags[dagID] }

// DAGs returns every DAG's definition, by dag_id.
func (s *Scheduler) DAGs() []*DAG {
	out := slices.Collect(maps.Values(s.dags))
	slices.SortFunc(out, func(a, b *DAG) int { return compareStrings(a.DagID, b.DagID) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Store returns the scheduler's metadata store.
func (s *Scheduler) Store() Store { return s.store }

// Start records the DAGs in the store, resolves what a previous process
// left running, and starts the River client that runs ticks and tries
// until Stop.
func (s *Scheduler) Start(ctx context.Context) error {
	for _, d := range s.DAGs() {
		st := DAGState{DagID: d.DagID, Owner: d.Owner, Description: d.Description, Schedule: scheduleString(d.Schedule),
			Fileloc: "userstream", LastParsed: s.cfg.Now().UTC()}
		got, err := s.store.SyncDAG(ctx, st, d.IsPausedUponCreation)
		if err != nil {
			return fmt.Errorf("scheduler: record DAG %s: %w", d.DagID, err)
		}
		if err := s.refreshNext(ctx, d, got); err != nil {
			return err
		}
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &taskWorker{s: s}); err != nil {
		return err
	}
	rl := s.cfg.RiverLogger
	if rl == nil {
		rl = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// The longest a try may run; River rescues a job marked running for
	// longer than this plus rescueMargin (a process that died is found
	// sooner by its heartbeat, resolveOrphans).
	var longest time.Duration
	for _, d := range s.dags {
		t := d.DefaultArgs.ExecutionTimeout
		if t <= 0 {
			t = s.cfg.DefaultExecutionTimeout
		}
		longest = max(longest, t)
	}
	if longest == 0 {
		longest = s.cfg.DefaultExecutionTimeout
	}
	s.started = time.Now()
	s.id = fmt.Sprintf("%s_%d_%s", s.cfg.Hostname, os.Getpid(), s.started.UTC().Format("20060102T150405.000000"))
	s.live.since = s.started
	// Beat before River may hand this process a job: the others must see
	// a heartbeat for every client that runs tries.
	if err := s.beat(ctx); err != nil {
		return err
	}
	q, err := s.store.Queue(&river.Config{
		ID:                   s.id,
		Logger:               rl,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.cfg.Workers}},
		Workers:              workers,
		JobTimeout:           longest, // the workers set their own; River wants it below the rescue time
		RescueStuckJobsAfter: longest + rescueMargin,
		FetchPollInterval:    200 * time.Millisecond,
		FetchCooldown:        50 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("scheduler: river client: %w", err)
	}
	s.queue = q
	if err := q.Start(ctx); err != nil {
		return fmt.Errorf("scheduler: start river: %w", err)
	}
	// Ticks and heartbeats outlive ctx until Stop: a stopping process
	// still runs its last tries, and must keep saying it is alive.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopLoop, s.loopDone = cancel, make(chan struct{})
	go s.loop(lctx)
	return nil
}

// loop ticks just after each multiple of TickEvery and beats every
// heartbeatEvery until ctx ends.
func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.loopDone)
	// A little after the boundary, different in each process, so that two
	// processes seldom hit the store at the same instant.
	offset := 10*time.Millisecond + time.Duration(rand.Int64N(int64(s.cfg.TickEvery/10)+1))
	beats := time.NewTicker(heartbeatEvery)
	defer beats.Stop()
	tick := time.NewTimer(0) // the first tick at once, as a process starts
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beats.C:
			if err := s.beat(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("scheduler heartbeat failed; the next one retries", "err", err)
			}
		case <-tick.C:
			if !s.stopping.Load() {
				if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("scheduler tick failed; the next one retries", "err", err)
				}
			}
			now := time.Now()
			tick.Reset(now.Truncate(s.cfg.TickEvery).Add(s.cfg.TickEvery + offset).Sub(now))
		case <-s.nudged:
			if !s.stopping.Load() {
				if err := s.startQueuedAll(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("scheduler: starting queued runs failed; the next tick retries", "err", err)
				}
			}
		}
	}
}

// nudge asks the loop to start queued runs now; it never blocks (one
// pending nudge starts all there is room for).
func (s *Scheduler) nudge() {
	select {
	case s.nudged <- struct{}{}:
	default:
	}
}

// startQueuedAll starts the queued runs of every unpaused DAG within
// max_active_runs: the part of a tick that a nudge makes due.
func (s *Scheduler) startQueuedAll(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	var errs []error
	for _, d := range s.DAGs() {
		st, err := s.store.GetDAG(ctx, d.DagID)
		if err == nil && !st.IsPaused {
			err = s.startQueued(ctx, d)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("DAG %s: %w", d.DagID, err))
		}
	}
	return errors.Join(errs...)
}

// beat records this process's heartbeat.
func (s *Scheduler) beat(ctx context.Context) error {
	err := s.store.Heartbeat(ctx, SchedulerJob{ID: s.id, Hostname: s.cfg.Hostname, StartDate: s.started.UTC(),
		LatestHeartbeat: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("scheduler: heartbeat: %w", err)
	}
	return nil
}

// Stop stops ticking and taking new tries, waits for the running ones
// (their context is cancelled when ctx ends) and stops River; the process
// beats until then, so the others leave its tries alone.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.queue == nil {
		return nil
	}
	s.stopping.Store(true)
	err := s.queue.Stop(ctx)
	if s.stopLoop != nil { // nil when River failed to start
		s.stopLoop()
		<-s.loopDone
	}
	return err
}

func scheduleString(spec string) string {
	if spec == "" {
		return "none"
	}
	return spec
}

// refreshNext records the DAG's next scheduled logical date.
func (s *Scheduler) refreshNext(ctx context.Context, d *DAG, st DAGState) error {
	last, err := s.lastScheduled(ctx, d.DagID)
	if err != nil {
		return err
	}
	var next time.Time
	if iv, ok := NextInterval(d, s.scheds[d.DagID], last); ok {
		next = iv.Start
	}
	if next.Equal(st.NextDagRun) {
		return nil
	}
	return s.store.SetNextDagRun(ctx, d.DagID, next)
}

// lastScheduled is the logical date of the DAG's latest scheduled or
// backfill run (zero: none).
func (s *Scheduler) lastScheduled(ctx context.Context, dagID string) (time.Time, error) {
	runs, _, err := s.store.ListRuns(ctx, RunFilter{DagID: dagID, RunTypes: []RunType{RunScheduled}, OrderBy: "-logical_date", Limit: 1})
	if err != nil {
		return time.Time{}, fmt.Errorf("scheduler: last run of %s: %w", dagID, err)
	}
	if len(runs) == 0 {
		return time.Time{}, nil
	}
	return runs[0].LogicalDate, nil
}

// Tick does one round of the scheduler's work: it creates the runs that
// are due (for unpaused DAGs), starts queued runs within max_active_runs,
// and resolves tries whose worker is gone. Every scheduler process runs it
// every TickEvery, at once with the others: it is safe to.
func (s *Scheduler) Tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	defer s.lastTick.Store(time.Now().UnixNano())
	var errs []error
	for _, d := range s.DAGs() {
		if err := s.tickDAG(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("DAG %s: %w", d.DagID, err))
		}
	}
	if err := s.resolveOrphans(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Scheduler) tickDAG(ctx context.Context, d *DAG) error {
	st, err := s.store.GetDAG(ctx, d.DagID)
	if err != nil {
		return err
	}
	// As in Airflow, a paused DAG gets no scheduled runs, and its queued
	// runs (triggered by hand) wait until it is unpaused.
	if st.IsPaused {
		return nil
	}
	if err := s.createDue(ctx, d, st); err != nil {
		return err
	}
	return s.startQueued(ctx, d)
}

// createDue creates the scheduled runs that are due, at most as many as
// max_active_runs leaves room for.
func (s *Scheduler) createDue(ctx context.Context, d *DAG, st DAGState) error {
	active, err := s.activeRuns(ctx, d.DagID)
	if err != nil {
		return err
	}
	room := d.MaxActiveRuns - active
	if room <= 0 {
		return nil
	}
	last, err := s.lastScheduled(ctx, d.DagID)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	for _, iv := range Due(d, s.scheds[d.DagID], last, now, min(room, maxCatchup)) {
		r := Run{DagID: d.DagID, RunID: RunID(RunScheduled, iv.Start), RunType: RunScheduled,
			LogicalDate: iv.Start, DataIntervalStart: iv.Start, DataIntervalEnd: iv.End,
			State: RunQueued, QueuedAt: now}
		if err := s.store.CreateRun(ctx, r); err != nil {
			if errors.Is(err, ErrExists) {
				continue // another scheduler made it first
			}
			return err
		}
		s.cfg.Metrics.runCreated(d.DagID, RunScheduled)
		s.log.Debug("dag run created", "dag_id", d.DagID, "run_id", r.RunID, "data_interval", iv.Start.Format(time.RFC3339)+"/"+iv.End.Format(time.RFC3339))
	}
	return s.refreshNext(ctx, d, st)
}

func (s *Scheduler) activeRuns(ctx context.Context, dagID string) (int, error) {
	_, n, err := s.store.ListRuns(ctx, RunFilter{DagID: dagID, States: []RunState{RunRunning}, Limit: 1})
	return n, err
}

// startQueued starts queued runs, oldest logical date first, while fewer
// than max_active_runs are running.
func (s *Scheduler) startQueued(ctx context.Context, d *DAG) error {
	running, err := s.activeRuns(ctx, d.DagID)
	if err != nil {
		return err
	}
	room := d.MaxActiveRuns - running
	if room <= 0 {
		return nil
	}
	queued, _, err := s.store.ListRuns(ctx, RunFilter{DagID: d.DagID, States: []RunState{RunQueued}, OrderBy: "logical_date", Limit: room})
	if err != nil {
		return err
	}
	for _, r := range queued {
		if err := s.startRun(ctx, d, r); err != nil {
			return err
		}
	}
	return nil
}

// startRun marks a run running and enqueues one River job per task. Try
// numbers continue after the highest the task already had (a cleared run
// keeps its history).
func (s *Scheduler) startRun(ctx context.Context, d *DAG, r Run) error {
	tries, err := s.store.ListTries(ctx, r.DagID, r.RunID)
	if err != nil {
		return err
	}
	highest := map[string]int{} // read before the claim: no try is added to a queued run
	for _, t := range tries {
		highest[t.TaskID] = max(highest[t.TaskID], t.TryNumber)
	}
	now := s.cfg.Now().UTC()
	r.State, r.StartDate, r.EndDate = RunRunning, now, time.Time{}
	// Another scheduler's tick may be starting the same run: one claim wins.
	if won, err := s.store.ClaimRun(ctx, RunQueued, r); err != nil || !won {
		return err
	}
	due := r.QueuedAt
	if r.RunType == RunScheduled && !r.DataIntervalEnd.IsZero() {
		due = r.DataIntervalEnd
	}
	maxTries := d.DefaultArgs.Retries + 1
	for _, t := range d.Tasks {
		first := highest[t.TaskID] + 1
		// The try is recorded before its job exists: the job may start at
		// once, and its worker's record must be the last word. A try left
		// queued without a job is failed by resolveOrphans.
		try := Try{DagID: r.DagID, RunID: r.RunID, TaskID: t.TaskID, TryNumber: first,
			MaxTries: first - 1 + maxTries, State: TaskQueued, QueuedAt: due}
		if err := s.store.PutTry(ctx, try); err != nil {
			return err
		}
		if _, err := s.queue.Insert(ctx, taskArgs{DagID: r.DagID, RunID: r.RunID, TaskID: t.TaskID, FirstTry: first, MaxTries: try.MaxTries},
			&river.InsertOpts{MaxAttempts: maxTries}); err != nil {
			return fmt.Errorf("enqueue %s of %s: %w", t.TaskID, r.RunID, err)
		}
	}
	s.log.Debug("dag run started", "dag_id", r.DagID, "run_id", r.RunID)
	return nil
}
