package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Service is what a user does with DAGs and runs: trigger, pause, backfill,
// clear, mark, delete, and read them. It works on the store alone, so the
// CLI can use it without a running scheduler: runs it creates are queued,
// and a scheduler starts them on its next tick.
type Service struct {
	store  Store
	dags   map[string]*DAG
	scheds map[string]Schedule
	now    func() time.Time
	queued func() // a run was queued: a scheduler of this process starts it now (nil: none)
}

// ErrInvalid is matched by errors about a request's content (a bad conf, a
// date range backwards, a state that is not one): a 400 in the REST API.
var ErrInvalid = errors.New("invalid request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// NewService returns a Service over st for the DAGs defined (nil: only
// what the store knows; backfill then needs the definitions and fails).
func NewService(st Store, dags []*DAG) (*Service, error) {
	s := &Service{store: st, dags: map[string]*DAG{}, scheds: map[string]Schedule{}, now: time.Now}
	for _, d := range dags {
		sched, err := ParseSchedule(d.Schedule, d.Timezone)
		if err != nil {
			return nil, fmt.Errorf("DAG %q: %w", d.DagID, err)
		}
		s.dags[d.DagID], s.scheds[d.DagID] = d, sched
	}
	return s, nil
}

// Service returns the scheduler's operations.
func (s *Scheduler) Service() *Service {
	return &Service{store: s.store, dags: s.dags, scheds: s.scheds, now: s.cfg.Now, queued: s.nudge}
}

// nudge tells this process's scheduler, if any, that runs were queued
// (another process's finds them on its next tick).
func (s *Service) nudge() {
	if s.queued != nil {
		s.queued()
	}
}

// Store is the service's metadata store.
func (s *Service) Store() Store { return s.store }

// Definition returns a DAG's definition, or nil when this process does not
// have it.
func (s *Service) Definition(dagID string) *DAG { return s.dags[dagID] }

func (s *Service) known(ctx context.Context, dagID string) (DAGState, error) {
	st, err := s.store.GetDAG(ctx, dagID)
	if errors.Is(err, ErrNotFound) {
		return DAGState{}, fmt.Errorf("DAG %q: %w", dagID, ErrNotFound)
	}
	return st, err
}

// Trigger creates a manual run, queued. logical zero means now; runID ""
// forms manual__<logical date>. The DAG's ConfCheck, when it has one,
// checks conf. A run id or logical date already taken is ErrExists.
func (s *Service) Trigger(ctx context.Context, dagID string, conf map[string]any, logical time.Time, runID string) (Run, error) {
	if _, err := s.known(ctx, dagID); err != nil {
		return Run{}, err
	}
	if d := s.dags[dagID]; d != nil && d.ConfCheck != nil {
		if err := d.ConfCheck(conf); err != nil {
			return Run{}, invalid("conf: %v", err)
		}
	}
	now := s.now().UTC()
	if logical.IsZero() {
		logical = now
	}
	logical = logical.UTC().Truncate(time.Microsecond)
	if runID == "" {
		runID = RunID(RunManual, logical)
	} else if !validID(runID) && !validRunID(runID) {
		return Run{}, invalid("dag_run_id %q: use letters, digits and - _ . : +", runID)
	}
	r := Run{DagID: dagID, RunID: runID, RunType: RunManual, LogicalDate: logical, DataIntervalStart: logical,
		DataIntervalEnd: logical, State: RunQueued, Conf: conf, ExternalTrigger: true, QueuedAt: now}
	if err := s.store.CreateRun(ctx, r); err != nil {
		return Run{}, err
	}
	s.nudge()
	return r, nil
}

func validRunID(s string) bool {
	if s == "" || len(s) > 250 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':' || r == '+') {
			return false
		}
	}
	return true
}

// SetPaused pauses or unpauses a DAG.
func (s *Service) SetPaused(ctx context.Context, dagID string, paused bool) (DAGState, error) {
	if _, err := s.known(ctx, dagID); err != nil {
		return DAGState{}, err
	}
	if err := s.store.SetPaused(ctx, dagID, paused); err != nil {
		return DAGState{}, err
	}
	if !paused {
		s.nudge()
	}
	return s.store.GetDAG(ctx, dagID)
}

// Backfill creates a backfill run, queued, for every interval of the DAG's
// schedule whose logical date lies in [from, to]; max_active_runs holds
// them back as it does any run. Intervals that already have a run are
// skipped (returned in skipped).
func (s *Service) Backfill(ctx context.Context, dagID string, from, to time.Time) (created []Run, skipped []time.Time, err error) {
	st, err := s.known(ctx, dagID)
	if err != nil {
		return nil, nil, err
	}
	d, sched := s.dags[dagID], s.scheds[dagID]
	if d == nil {
		// Without the definition (the CLI on the store alone), the
		// schedule the store recorded, read in UTC.
		if sched, err = ParseSchedule(st.Schedule, time.UTC); err != nil {
			return nil, nil, invalid("DAG %q: its recorded schedule %q does not parse: %v", dagID, st.Schedule, err)
		}
		d = &DAG{DagID: dagID, StartDate: from}
	}
	if to.Before(from) {
		return nil, nil, invalid("backfill range %s..%s ends before it starts", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if _, none := sched.(noSchedule); none {
		return nil, nil, invalid("DAG %q has no schedule to backfill", dagID)
	}
	iv, ok := sched.First(from)
	if _, every := sched.(everySchedule); every {
		// Intervals of @every lie on the start date's grid.
		iv, ok = sched.First(d.StartDate)
		for ok && iv.Start.Before(from) {
			iv, ok = sched.After(iv)
		}
	}
	now := s.now().UTC()
	for n := 0; ok && !iv.Start.After(to) && n < maxCatchup; n++ {
		r := Run{DagID: dagID, RunID: RunID(RunBackfill, iv.Start), RunType: RunBackfill, LogicalDate: iv.Start,
			DataIntervalStart: iv.Start, DataIntervalEnd: iv.End, State: RunQueued, QueuedAt: now}
		switch err := s.store.CreateRun(ctx, r); {
		case errors.Is(err, ErrExists):
			skipped = append(skipped, iv.Start)
		case err != nil:
			return created, skipped, err
		default:
			created = append(created, r)
		}
		if _, once := sched.(onceSchedule); once {
			break
		}
		iv, ok = sched.After(iv)
	}
	if len(created) > 0 {
		s.nudge()
	}
	return created, skipped, nil
}

// Clear queues a finished run again, so that its tasks run once more with
// new try numbers (their earlier tries and logs stay). A run still running
// cannot be cleared.
func (s *Service) Clear(ctx context.Context, dagID, runID string) (Run, error) {
	r, err := s.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return Run{}, err
	}
	if r.State == RunRunning {
		return Run{}, invalid("run %s is running; wait for it or mark it failed first", runID)
	}
	r.State, r.StartDate, r.EndDate, r.QueuedAt = RunQueued, time.Time{}, time.Time{}, s.now().UTC()
	if err := s.store.UpdateRun(ctx, r); err != nil {
		return Run{}, err
	}
	s.nudge()
	return r, nil
}

// Mark sets a run's state to success or failed by hand, as Airflow's "mark
// success/failed" does: its unfinished tries take the same state.
func (s *Service) Mark(ctx context.Context, dagID, runID string, state RunState) (Run, error) {
	if state != RunSuccess && state != RunFailed && state != RunQueued {
		return Run{}, invalid("state %q: use success, failed or queued", state)
	}
	if state == RunQueued {
		return s.Clear(ctx, dagID, runID)
	}
	r, err := s.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return Run{}, err
	}
	tries, err := s.store.ListTries(ctx, dagID, runID)
	if err != nil {
		return Run{}, err
	}
	now := s.now().UTC()
	tryState := TaskState(state) // success and failed are spelt alike for both
	for _, t := range tries {
		if t.State == TaskSuccess || t.State == TaskFailed {
			continue
		}
		t.State, t.EndDate = tryState, now
		if t.Error == "" && tryState == TaskFailed {
			t.Error = "marked failed by hand"
		}
		if err := s.store.PutTry(ctx, t); err != nil {
			return Run{}, err
		}
	}
	r.State, r.EndDate = state, now
	if r.StartDate.IsZero() {
		r.StartDate = now
	}
	if err := s.store.UpdateRun(ctx, r); err != nil {
		return Run{}, err
	}
	s.nudge() // a run marked by hand makes room for a queued one
	return r, nil
}

// SetNote sets a run's note.
func (s *Service) SetNote(ctx context.Context, dagID, runID, note string) (Run, error) {
	r, err := s.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return Run{}, err
	}
	r.Note = note
	return r, s.store.UpdateRun(ctx, r)
}

// Delete deletes a run with its tries and logs.
func (s *Service) Delete(ctx context.Context, dagID, runID string) error {
	if err := s.store.DeleteRun(ctx, dagID, runID); err != nil {
		return err
	}
	s.nudge()
	return nil
}

// TaskInstance is a task of a run as Airflow's API shows it: its latest
// try, with the number of tries so far.
type TaskInstance struct {
	Try
	Tries       []Try     // every try, oldest first
	LogicalDate time.Time // the run's (Airflow 2 shows it as the instance's execution_date)
}

// TaskInstances returns a run's task instances, by task id: one per task of
// the DAG's definition (a task with no try yet is "queued" when the run is,
// else has no state) and any the store has of tasks the definition lacks.
func (s *Service) TaskInstances(ctx context.Context, dagID, runID string) ([]TaskInstance, error) {
	r, err := s.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	tries, err := s.store.ListTries(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	byTask := map[string]*TaskInstance{}
	var order []string
	add := func(id string) *TaskInstance {
		if ti := byTask[id]; ti != nil {
			return ti
		}
		ti := &TaskInstance{Try: Try{DagID: dagID, RunID: runID, TaskID: id}}
		byTask[id] = ti
		order = append(order, id)
		return ti
	}
	if d := s.dags[dagID]; d != nil {
		for _, t := range d.Tasks {
			ti := add(t.TaskID)
			if r.State == RunQueued || r.State == RunRunning {
				ti.State = TaskQueued
			}
			ti.MaxTries = d.DefaultArgs.Retries + 1
		}
	}
	for _, t := range tries {
		ti := add(t.TaskID)
		ti.Tries = append(ti.Tries, t)
		if t.TryNumber >= ti.TryNumber {
			ti.Try = t
		}
	}
	out := make([]TaskInstance, 0, len(order))
	for _, id := range order {
		ti := byTask[id]
		ti.LogicalDate = r.LogicalDate
		out = append(out, *ti)
	}
	return out, nil
}
