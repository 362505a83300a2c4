package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// rescueMargin is how long past the longest execution timeout a try
	// still marked running is taken for one whose worker died.
	rescueMargin = 10 * time.Second
	// maxCatchup bounds the runs one tick creates for one DAG.
	maxCatchup = 1000
)

// Config says how a Scheduler runs.
type Config struct {
	Store Store
	DAGs  []*DAG
	// Hostname is recorded on every try [os.Hostname()].
	Hostname string
	// TickEvery is how often the leader looks for due runs and starts
	// queued ones [1s].
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
// schedulers may share one PostgreSQL store: River elects one leader,
// which alone looks for due runs, and the store's unique keys refuse a
// second run for one slot whatever happens.
type Scheduler struct {
	cfg    Config
	store  Store
	dags   map[string]*DAG
	scheds map[string]Schedule
	log    *slog.Logger
	queue  Queue

	tickMu   sync.Mutex   // one tick at a time in this process
	lastTick atomic.Int64 // unix nanos of the last tick this process ran
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
	s := &Scheduler{cfg: cfg, store: cfg.Store, dags: map[string]*DAG{}, scheds: map[string]Schedule{}, log: cfg.Logger}
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
	if err := river.AddWorkerSafely(workers, &tickWorker{s: s}); err != nil {
		return err
	}
	rl := s.cfg.RiverLogger
	if rl == nil {
		rl = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// The longest a try may run; a try marked running for longer than this
	// plus rescueMargin has lost its worker.
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
	q, err := s.store.Queue(&river.Config{
		Logger:               rl,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.cfg.Workers}},
		Workers:              workers,
		JobTimeout:           longest, // the workers set their own; River wants it below the rescue time
		RescueStuckJobsAfter: longest + rescueMargin,
		FetchPollInterval:    200 * time.Millisecond,
		FetchCooldown:        50 * time.Millisecond,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(s.cfg.TickEvery),
			// Unique per period (ByPeriod takes no less than 1 s): a slow
			// tick does not pile up others behind it, and one whose process
			// died (left running until River's rescuer comes) does not block
			// the next period's.
			func() (river.JobArgs, *river.InsertOpts) {
				slot := time.Now().UnixNano() / int64(s.cfg.TickEvery)
				return tickArgs{Slot: slot}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true}}
			},
			&river.PeriodicJobOpts{RunOnStart: true, ID: "userstream_tick"})},
	})
	if err != nil {
		return fmt.Errorf("scheduler: river client: %w", err)
	}
	s.queue = q
	if err := q.Start(ctx); err != nil {
		return fmt.Errorf("scheduler: start river: %w", err)
	}
	return nil
}

// Stop stops taking new tries, waits for the running ones (their context is
// cancelled when ctx ends) and stops River.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.queue == nil {
		return nil
	}
	return s.queue.Stop(ctx)
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

// tickArgs is the periodic job that makes the leader look for work; Slot
// (the tick's period number) makes it unique per period.
type tickArgs struct {
	Slot int64 `json:"slot"`
}

func (tickArgs) Kind() string { return "userstream_scheduler_tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	s *Scheduler
}

func (w *tickWorker) Timeout(*river.Job[tickArgs]) time.Duration { return time.Minute }

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[tickArgs]) error {
	if err := w.s.Tick(ctx); err != nil {
		w.s.log.Warn("scheduler tick failed; the next one retries", "err", err)
	}
	return nil // a tick is never retried: the next one comes
}

// Tick does one round of the scheduler's work: it creates the runs that
// are due (for unpaused DAGs), starts queued runs within max_active_runs,
// and resolves tries whose worker is gone. The leader runs it every
// TickEvery; calling it by hand (tests) is safe.
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
