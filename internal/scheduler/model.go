// Package scheduler is Airflow's role: DAGs on schedules, their runs and
// task tries, retried by policy, with history and logs in a metadata store.
//
// The words are Airflow's (DAG, DAG run, logical date, data interval, task
// instance, try number, catchup, max_active_runs) and so is their meaning,
// so that a user of Airflow finds what they expect. Task tries run through
// River (riverqueue/river) on the same database as the store, which gives
// them durable retries and timeouts. Several scheduler processes on one
// store are all active (Scheduler), and resolve each other's tries when
// one dies.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// RunType is how a DAG run came to be, as Airflow names it (and prefixes
// run ids with). It is stored and sent as its text.
type RunType string

// Run types.
const (
	RunScheduled RunType = "scheduled"
	RunManual    RunType = "manual"
	RunBackfill  RunType = "backfill"
)

// RunState is the state of a DAG run, as Airflow spells it. It is stored
// and sent as its text.
type RunState string

// DAG run states.
const (
	RunQueued  RunState = "queued"
	RunRunning RunState = "running"
	RunSuccess RunState = "success"
	RunFailed  RunState = "failed"
)

// TaskState is the state of a task instance (a try), as Airflow spells
// it. It is stored and sent as its text.
type TaskState string

// Task instance (try) states.
const (
	TaskQueued     TaskState = "queued"
	TaskRunning    TaskState = "running"
	TaskSuccess    TaskState = "success"
	TaskFailed     TaskState = "failed"
	TaskUpForRetry TaskState = "up_for_retry"
	TaskRemoved    TaskState = "removed"
)

// DefaultArgs are a DAG's task defaults, Airflow's default_args.
type DefaultArgs struct {
	// Retries is how many times a failed try is tried again (so a task
	// has Retries+1 tries).
	Retries int `json:"retries"`
	// RetryDelay is the wait before a retry [5m, Airflow's default].
	RetryDelay time.Duration `json:"retry_delay"`
	// RetryExponentialBackoff doubles the delay with each retry, up to
	// MaxRetryDelay.
	RetryExponentialBackoff bool          `json:"retry_exponential_backoff"`
	MaxRetryDelay           time.Duration `json:"max_retry_delay"`
	// ExecutionTimeout bounds one try; 0 means the scheduler's default.
	ExecutionTimeout time.Duration `json:"execution_timeout"`
}

// TaskFunc runs one try of a task. The context is cancelled at the try's
// execution timeout or when the scheduler stops. Log to log: each try's
// log is kept and shown per try. A returned error fails the try.
type TaskFunc func(ctx context.Context, ti TaskContext) error

// TaskContext is what a try knows about itself.
type TaskContext struct {
	DAG         *DAG
	Run         Run
	TaskID      string
	TryNumber   int
	MaxTries    int
	Log         *slog.Logger
	Conf        map[string]any
	Seed        string // derived from (dag_id, logical date) unless the run's conf gives one
	LogicalDate time.Time
}

// Task is one step of a DAG.
type Task struct {
	TaskID string
	Run    TaskFunc
}

// DAG is a workflow: tasks on a schedule. Only the DAG's definition is
// here; whether it is paused lives in the store.
type DAG struct {
	DagID       string
	Owner       string
	Description string
	// Schedule is a cron expression, a preset (@once, @hourly, @daily,
	// @weekly, @monthly, @yearly), @every DURATION, or "" / "none" for
	// runs triggered by hand only.
	Schedule string
	// Timezone the schedule is read in [UTC].
	Timezone *time.Location
	// StartDate is the first logical date; EndDate, when set, the last.
	StartDate, EndDate time.Time
	// Catchup creates a run for every interval missed since StartDate (or
	// since the last run); without it only the latest interval runs.
	Catchup bool
	// MaxActiveRuns bounds the runs queued or running at once [16].
	MaxActiveRuns int
	// IsPausedUponCreation is whether a DAG the store has never seen starts
	// paused (Airflow's default is true; ours is false).
	IsPausedUponCreation bool
	DefaultArgs          DefaultArgs
	Tasks                []Task
	// ConfCheck, when set, checks the conf of a manual run before it is
	// created; its error is shown to the user.
	ConfCheck func(conf map[string]any) error
	// Tags are free labels shown in lists.
	Tags []string
}

// Run is a DAG run.
type Run struct {
	DagID             string         `json:"dag_id"`
	RunID             string         `json:"dag_run_id"`
	RunType           RunType        `json:"run_type"`
	LogicalDate       time.Time      `json:"logical_date"`
	DataIntervalStart time.Time      `json:"data_interval_start"`
	DataIntervalEnd   time.Time      `json:"data_interval_end"`
	State             RunState       `json:"state"`
	Conf              map[string]any `json:"conf"`
	ExternalTrigger   bool           `json:"external_trigger"`
	QueuedAt          time.Time      `json:"queued_at"`
	StartDate         time.Time      `json:"start_date"`
	EndDate           time.Time      `json:"end_date"`
	Note              string         `json:"note"`
}

// Try is one try of a task instance (Airflow keeps the latest in
// task_instance and every try in its history); the task instance is its
// latest try.
type Try struct {
	DagID     string    `json:"dag_id"`
	RunID     string    `json:"dag_run_id"`
	TaskID    string    `json:"task_id"`
	TryNumber int       `json:"try_number"`
	MaxTries  int       `json:"max_tries"`
	State     TaskState `json:"state"`
	StartDate time.Time `json:"start_date"`
	EndDate   time.Time `json:"end_date"`
	Hostname  string    `json:"hostname"`
	Error     string    `json:"error"`
	// JobID is the River job that runs this task instance (every try of a
	// task instance is an attempt of one job).
	JobID int64 `json:"-"`
	// QueuedAt is when the try was due (its run's due time, or its retry
	// time), for the schedule-delay metric.
	QueuedAt time.Time `json:"queued_dttm"`
}

// SchedulerJob is one scheduler process, as Airflow's job table keeps it.
type SchedulerJob struct {
	ID              string    // the process's River client id
	Hostname        string    //
	StartDate       time.Time //
	LatestHeartbeat time.Time // by the process's own clock
}

// Duration is how long the try took, or has taken so far.
func (t Try) Duration() time.Duration {
	switch {
	case t.StartDate.IsZero():
		return 0
	case t.EndDate.IsZero():
		return time.Since(t.StartDate)
	}
	return t.EndDate.Sub(t.StartDate)
}

// DAGState is what the store keeps of a DAG besides its definition.
type DAGState struct {
	DagID       string    `json:"dag_id"`
	IsPaused    bool      `json:"is_paused"`
	Owner       string    `json:"owner"`
	Description string    `json:"description"`
	Schedule    string    `json:"schedule_interval"`
	Fileloc     string    `json:"fileloc"`
	LastParsed  time.Time `json:"last_parsed_time"`
	// NextDagRun is the logical date of the next scheduled run.
	NextDagRun time.Time `json:"next_dagrun"`
}

// Errors of stores and operations; errors.Is works on what they return.
// ErrStoreClosed is what every call to a Store returns, wrapped, once it
// is closed.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrStoreClosed = errors.New("store is closed")
)

// conf decodes a JSON object, keeping nil for "null" or empty input.
func conf(b []byte) (map[string]any, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
