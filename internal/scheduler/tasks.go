package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// taskArgs is the River job of one task instance: each of its attempts is
// one try, numbered from FirstTry.
type taskArgs struct {
	DagID    string `json:"dag_id"`
	RunID    string `json:"run_id"`
	TaskID   string `json:"task_id"`
	FirstTry int    `json:"first_try"`
	MaxTries int    `json:"max_tries"`
}

func (taskArgs) Kind() string { return "userstream_task" }

type taskWorker struct {
	river.WorkerDefaults[taskArgs]
	s *Scheduler
}

// Timeout is the DAG's execution_timeout (or the scheduler's default).
func (w *taskWorker) Timeout(job *river.Job[taskArgs]) time.Duration {
	if d := w.s.dags[job.Args.DagID]; d != nil && d.DefaultArgs.ExecutionTimeout > 0 {
		return d.DefaultArgs.ExecutionTimeout
	}
	return w.s.cfg.DefaultExecutionTimeout
}

// NextRetry waits retry_delay, doubled for each earlier retry with
// retry_exponential_backoff, up to max_retry_delay.
func (w *taskWorker) NextRetry(job *river.Job[taskArgs]) time.Time {
	d := w.s.dags[job.Args.DagID]
	if d == nil {
		return time.Time{}
	}
	return time.Now().Add(RetryDelay(d.DefaultArgs, job.Attempt))
}

// RetryDelay is the wait after the try-th try failed.
func RetryDelay(a DefaultArgs, try int) time.Duration {
	delay := a.RetryDelay
	if a.RetryExponentialBackoff {
		for i := 1; i < try && (a.MaxRetryDelay <= 0 || delay < a.MaxRetryDelay); i++ {
			delay *= 2
		}
	}
	if a.MaxRetryDelay > 0 && delay > a.MaxRetryDelay {
		delay = a.MaxRetryDelay
	}
	return delay
}

// Work runs one try: it records the try as running (and a previous try
// left running by a dead worker as failed), runs the task with a logger
// that keeps the try's log, and records how it ended. The run's state
// follows its tasks'.
func (w *taskWorker) Work(ctx context.Context, job *river.Job[taskArgs]) (err error) {
	s, a := w.s, job.Args
	d := s.dags[a.DagID]
	if d == nil {
		return river.JobCancel(fmt.Errorf("DAG %q is not defined in this scheduler", a.DagID))
	}
	var task *Task
	for i := range d.Tasks {
		if d.Tasks[i].TaskID == a.TaskID {
			task = &d.Tasks[i]
		}
	}
	if task == nil {
		return river.JobCancel(fmt.Errorf("DAG %q has no task %q", a.DagID, a.TaskID))
	}
	run, err := s.store.GetRun(ctx, a.DagID, a.RunID)
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(fmt.Errorf("run %s of %s was deleted", a.RunID, a.DagID))
	}
	if err != nil {
		return err
	}
	if run.State != RunRunning {
		// Marked success or failed by hand, or cleared, while queued.
		return river.JobCancel(fmt.Errorf("run %s is %s, not running", a.RunID, run.State))
	}
	tryNo := a.FirstTry + job.Attempt - 1
	tries, err := s.store.ListTries(ctx, a.DagID, a.RunID)
	if err != nil {
		return err
	}
	queuedAt := run.QueuedAt
	for _, t := range tries {
		if t.TaskID != a.TaskID {
			continue
		}
		if t.TryNumber == tryNo {
			queuedAt = t.QueuedAt
		}
		if t.TryNumber < tryNo && (t.State == TaskRunning || t.State == TaskQueued) {
			// Its worker died: River rescued the job and this is the next
			// attempt.
			t.State, t.EndDate = TaskFailed, time.Now().UTC()
			t.Error = "the worker running this try stopped without finishing it (process killed?); rescued and retried"
			if err := s.store.PutTry(ctx, t); err != nil {
				return err
			}
			_ = s.store.AppendLog(ctx, t.DagID, t.RunID, t.TaskID, t.TryNumber, logLine(time.Now(), "ERROR", t.Error))
		}
	}
	now := time.Now().UTC()
	if job.Attempt > 1 {
		queuedAt = job.ScheduledAt.UTC() // when the retry was due
	}
	if queuedAt.IsZero() {
		queuedAt = now
	}
	try := Try{DagID: a.DagID, RunID: a.RunID, TaskID: a.TaskID, TryNumber: tryNo, MaxTries: a.MaxTries,
		State: TaskRunning, StartDate: now, Hostname: s.cfg.Hostname, JobID: job.ID, QueuedAt: queuedAt}
	if err := s.store.PutTry(ctx, try); err != nil {
		return err
	}
	s.cfg.Metrics.tryStarted(a.DagID, now.Sub(queuedAt))
	logs := newTryLog(s.store, try)
	defer logs.close()
	logs.line("INFO", fmt.Sprintf("Starting attempt %d of %d on %s (dag %s, run %s, task %s)",
		tryNo, a.MaxTries, s.cfg.Hostname, a.DagID, a.RunID, a.TaskID))

	tc := TaskContext{DAG: d, Run: run, TaskID: a.TaskID, TryNumber: tryNo, MaxTries: a.MaxTries,
		Log: slog.New(logs.handler()), Conf: run.Conf, LogicalDate: run.LogicalDate, Seed: Seed(run)}
	taskErr := runTask(ctx, task.Run, tc)

	try.EndDate = time.Now().UTC()
	last := job.Attempt >= job.MaxAttempts
	switch {
	case taskErr == nil:
		try.State = TaskSuccess
		logs.line("INFO", fmt.Sprintf("Marking task as SUCCESS after %s", try.Duration().Round(time.Millisecond)))
	case last:
		try.State, try.Error = TaskFailed, taskErr.Error()
		logs.line("ERROR", "Task failed: "+taskErr.Error())
		logs.line("ERROR", "Marking task as FAILED: no try left")
	default:
		try.State, try.Error = TaskUpForRetry, taskErr.Error()
		logs.line("ERROR", "Task failed: "+taskErr.Error())
		logs.line("INFO", fmt.Sprintf("Marking task as UP_FOR_RETRY: try %d of %d in %s",
			tryNo+1, a.MaxTries, RetryDelay(d.DefaultArgs, job.Attempt)))
	}
	logs.close()
	// Record the end even when the try's context is done (a timeout), unless
	// another scheduler resolved the try meanwhile, taking this process for
	// dead (its heartbeat stalled): that record stands, and so does the
	// retry it may have queued.
	wctx := context.WithoutCancel(ctx)
	if won, err := s.store.ClaimTry(wctx, TaskRunning, try); err != nil {
		return err
	} else if !won {
		s.log.Warn("another scheduler resolved this try while it ran (this process's heartbeat stalled); its end is not recorded",
			"dag_id", a.DagID, "run_id", a.RunID, "task_id", a.TaskID, "try", tryNo, "state", try.State)
		return nil
	}
	s.cfg.Metrics.tryEnded(a.DagID, try.State, try.Duration())
	if try.State != TaskUpForRetry {
		if err := s.settleRun(wctx, a.DagID, a.RunID); err != nil {
			s.log.Warn("could not settle the run's state", "run_id", a.RunID, "err", err)
		}
	}
	if taskErr != nil && last {
		// Out of tries: River discards the job; nothing to retry.
		return river.JobCancel(taskErr)
	}
	return taskErr
}

// runTask runs f, turning a panic into an error with its stack.
func runTask(ctx context.Context, f TaskFunc, tc TaskContext) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task panicked: %v\n%s", p, debug.Stack())
		}
	}()
	err = f(ctx, tc)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("execution_timeout reached: %w", err)
	}
	return err
}

// settleRun sets a running run's state from its tasks' latest tries: failed
// when one failed for good, success when all succeeded.
func (s *Scheduler) settleRun(ctx context.Context, dagID, runID string) error {
	r, err := s.store.GetRun(ctx, dagID, runID)
	if err != nil || r.State != RunRunning {
		return err
	}
	d := s.dags[dagID]
	if d == nil {
		return nil
	}
	tries, err := s.store.ListTries(ctx, dagID, runID)
	if err != nil {
		return err
	}
	latest := map[string]Try{}
	for _, t := range tries {
		if t.TryNumber >= latest[t.TaskID].TryNumber {
			latest[t.TaskID] = t
		}
	}
	state := RunSuccess
	for _, t := range d.Tasks {
		switch latest[t.TaskID].State {
		case TaskFailed:
			state = RunFailed
		case TaskSuccess:
		default:
			return nil // still going
		}
		if state == RunFailed {
			break
		}
	}
	r.State, r.EndDate = state, time.Now().UTC()
	if err := s.store.UpdateRun(ctx, r); err != nil {
		return err
	}
	s.cfg.Metrics.runEnded(dagID, state)
	s.nudge()
	s.log.Info("dag run "+string(state), "dag_id", dagID, "run_id", runID, "duration", r.EndDate.Sub(r.StartDate).Round(time.Millisecond))
	return nil
}

// resolveOrphans fails the tries that no worker will finish: tries marked
// running whose River job has ended (rescued with no attempt left, or
// cancelled), and runs left with them; and the tries of a scheduler process
// whose heartbeat stopped (resolveDead).
func (s *Scheduler) resolveOrphans(ctx context.Context) error {
	tries, err := s.store.TriesInState(ctx, TaskRunning)
	if err != nil {
		return err
	}
	watched := false // the heartbeats are read once a tick, when needed
	for _, t := range tries {
		if t.JobID == 0 || s.queue == nil {
			continue
		}
		job, err := s.queue.JobGet(ctx, t.JobID)
		if err != nil && !errors.Is(err, river.ErrNotFound) {
			return err
		}
		if job != nil && job.State == rivertype.JobStateRunning && len(job.AttemptedBy) > 0 {
			if !watched {
				if err := s.watch(ctx); err != nil {
					return err
				}
				watched = true
			}
			if err := s.resolveDead(ctx, t, job); err != nil {
				return err
			}
			continue
		}
		if job != nil && !finalJob(job.State) {
			continue
		}
		if job != nil && job.State == rivertype.JobStateCompleted {
			continue // its worker is recording the end right now
		}
		t.State, t.EndDate = TaskFailed, time.Now().UTC()
		t.Error = "the worker running this try stopped without finishing it, and no try is left"
		if err := s.store.PutTry(ctx, t); err != nil {
			return err
		}
		_ = s.store.AppendLog(ctx, t.DagID, t.RunID, t.TaskID, t.TryNumber, logLine(time.Now(), "ERROR", t.Error))
		s.log.Warn("a try's worker died and it has no try left: failed", "dag_id", t.DagID, "run_id", t.RunID, "task_id", t.TaskID, "try", t.TryNumber)
		if err := s.settleRun(ctx, t.DagID, t.RunID); err != nil {
			return err
		}
	}
	return nil
}

// watch reads every process's heartbeat into s.live.
func (s *Scheduler) watch(ctx context.Context) error {
	jobs, err := s.store.SchedulerJobs(ctx)
	if err != nil {
		return err
	}
	s.live.observe(jobs, time.Now())
	return nil
}

// resolveDead resolves try t, running as job, when the process working the
// job has not heartbeat for deadAfter (SIGKILLed, or its machine gone), as
// Airflow resolves a zombie: the try fails, up for retry when it has tries
// left, whose next try is a new job; the dead process's job is cancelled so
// that River's rescuer, much later, ends it instead of running it again.
// ClaimTry makes one process do it when several see the death at once.
func (s *Scheduler) resolveDead(ctx context.Context, t Try, job *rivertype.JobRow) error {
	worker := job.AttemptedBy[len(job.AttemptedBy)-1]
	now := time.Now()
	silent := s.live.silentFor(worker, now)
	if worker == s.id || silent < deadAfter {
		return nil
	}
	var a taskArgs
	if err := json.Unmarshal(job.EncodedArgs, &a); err != nil || a.FirstTry+job.Attempt-1 != t.TryNumber {
		return nil // not this try's attempt: the job has moved on, and Work resolves t
	}
	retry := t.TryNumber < t.MaxTries
	ended := t
	ended.State, ended.EndDate = TaskFailed, now.UTC()
	if retry {
		ended.State = TaskUpForRetry
	}
	ended.Error = fmt.Sprintf("the scheduler running this try (%s) stopped without finishing it: no heartbeat for %s (killed?)", worker, silent.Round(100*time.Millisecond))
	if won, err := s.store.ClaimTry(ctx, TaskRunning, ended); err != nil || !won {
		return err
	}
	_ = s.store.AppendLog(ctx, t.DagID, t.RunID, t.TaskID, t.TryNumber, logLine(now, "ERROR", ended.Error))
	s.cfg.Metrics.tryEnded(t.DagID, ended.State, ended.Duration())
	s.log.Warn("a try's scheduler died; its try is resolved", "dag_id", t.DagID, "run_id", t.RunID, "task_id", t.TaskID,
		"try", t.TryNumber, "state", ended.State, "dead", worker)
	if _, err := s.queue.JobCancel(ctx, job.ID); err != nil {
		s.log.Warn("could not cancel a dead scheduler's job; River's rescuer ends it", "job", job.ID, "err", err)
	}
	if !retry {
		return s.settleRun(ctx, t.DagID, t.RunID)
	}
	delay := time.Duration(0)
	if d := s.dags[t.DagID]; d != nil {
		delay = RetryDelay(d.DefaultArgs, job.Attempt)
	}
	due := now.Add(delay)
	next := Try{DagID: t.DagID, RunID: t.RunID, TaskID: t.TaskID, TryNumber: t.TryNumber + 1, MaxTries: t.MaxTries,
		State: TaskQueued, QueuedAt: due.UTC()}
	if err := s.store.PutTry(ctx, next); err != nil {
		return err
	}
	if _, err := s.queue.Insert(ctx, taskArgs{DagID: t.DagID, RunID: t.RunID, TaskID: t.TaskID, FirstTry: next.TryNumber, MaxTries: t.MaxTries},
		&river.InsertOpts{MaxAttempts: t.MaxTries - t.TryNumber, ScheduledAt: due}); err != nil {
		return fmt.Errorf("enqueue the retry of %s of %s: %w", t.TaskID, t.RunID, err)
	}
	return nil
}

// liveness judges scheduler processes by whether their heartbeats move, as
// this process sees them, by its own clock: the processes' clocks need not
// agree.
type liveness struct {
	mu    sync.Mutex
	since time.Time           // when this process began watching
	seen  map[string]seenBeat // by process id
}

type seenBeat struct {
	beat time.Time // the latest heartbeat read
	at   time.Time // when it was first read, by this process's clock
}

// observe takes in the heartbeats read at now.
func (l *liveness) observe(jobs []SchedulerJob, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]seenBeat{}
	}
	for _, j := range jobs {
		if prev, ok := l.seen[j.ID]; !ok || !prev.beat.Equal(j.LatestHeartbeat) {
			l.seen[j.ID] = seenBeat{beat: j.LatestHeartbeat, at: now}
		}
	}
}

// silentFor is how long id's heartbeat has not moved, as far as this
// process knows: since it began watching, for a process it never saw.
func (l *liveness) silentFor(id string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.seen[id]; ok {
		return now.Sub(b.at)
	}
	return now.Sub(l.since)
}

func finalJob(st rivertype.JobState) bool {
	switch st {
	case rivertype.JobStateCancelled, rivertype.JobStateCompleted, rivertype.JobStateDiscarded:
		return true
	}
	return false
}

// Seed is the seed a run's users come from: the run conf's "seed" when it
// has one, else one derived from (dag_id, logical date), so that a retry or
// a cleared run fetches the same users and the sink ends with the same
// rows.
func Seed(r Run) string {
	if v, ok := r.Conf["seed"].(string); ok && v != "" {
		return v
	}
	h := sha256.Sum256([]byte(r.DagID + "\x00" + isoformat(r.LogicalDate)))
	return r.DagID + "-" + hex.EncodeToString(h[:8])
}

// tryLog keeps a try's log: lines are buffered and appended to the store
// every second and when the try ends, so a running try's log can be read.
type tryLog struct {
	store Store
	try   Try

	mu     sync.Mutex
	buf    strings.Builder
	done   chan struct{}
	closed bool
}

func newTryLog(st Store, t Try) *tryLog {
	l := &tryLog{store: st, try: t, done: make(chan struct{})}
	go func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-tk.C:
				l.flush()
			}
		}
	}()
	return l
}

func logLine(t time.Time, level, msg string) string {
	return fmt.Sprintf("[%s] %s - %s\n", t.UTC().Format("2006-01-02T15:04:05.000Z"), level, msg)
}

func (l *tryLog) line(level, msg string) {
	l.mu.Lock()
	l.buf.WriteString(logLine(time.Now(), level, msg))
	l.mu.Unlock()
}

func (l *tryLog) flush() {
	l.mu.Lock()
	text := l.buf.String()
	l.buf.Reset()
	l.mu.Unlock()
	if text != "" {
		_ = l.store.AppendLog(context.Background(), l.try.DagID, l.try.RunID, l.try.TaskID, l.try.TryNumber, text)
	}
}

func (l *tryLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	l.flush()
}

// handler returns a slog handler whose records become log lines.
func (l *tryLog) handler() slog.Handler { return &tryLogHandler{l: l} }

type tryLogHandler struct {
	l     *tryLog
	attrs []slog.Attr
}

func (h *tryLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *tryLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tryLogHandler{l: h.l, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *tryLogHandler) WithGroup(string) slog.Handler { return h }
func (h *tryLogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.l.mu.Lock()
	h.l.buf.WriteString(logLine(r.Time, r.Level.String(), b.String()))
	h.l.mu.Unlock()
	return nil
}
