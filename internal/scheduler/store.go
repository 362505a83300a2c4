package scheduler

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/userstream/userstream/internal/login"
)

// Store is the metadata store: what the scheduler keeps of DAGs, runs,
// tries, logs and users. Drivers live in scheduler/store/sqlite (the
// embedded default) and scheduler/store/postgres (as Airflow's), and every
// driver must pass scheduler/store/storetest.
//
// Times are stored with at least microsecond precision and come back in
// UTC; a zero time means "not set" and comes back zero. Every method is
// safe for concurrent use, also from several processes on one database.
type Store interface {
	// SyncDAG records a DAG's definition. A DAG the store has never seen is
	// created paused or not as pausedIfNew says; a known one keeps its
	// is_paused and gets the other fields. It returns what is stored.
	SyncDAG(ctx context.Context, d DAGState, pausedIfNew bool) (DAGState, error)
	// GetDAG returns a DAG's state, or an error matching ErrNotFound.
	GetDAG(ctx context.Context, dagID string) (DAGState, error)
	// ListDAGs returns every DAG, by dag_id.
	ListDAGs(ctx context.Context) ([]DAGState, error)
	// SetPaused pauses or unpauses a DAG (ErrNotFound if unknown).
	SetPaused(ctx context.Context, dagID string, paused bool) error
	// SetNextDagRun records the logical date of a DAG's next scheduled run
	// (zero: none).
	SetNextDagRun(ctx context.Context, dagID string, next time.Time) error

	// CreateRun stores a new run. A run whose (dag_id, run_id) or
	// (dag_id, logical_date) is taken is refused with an error matching
	// ErrExists: this is what keeps two schedulers from creating one slot
	// twice.
	CreateRun(ctx context.Context, r Run) error
	// GetRun returns a run, or an error matching ErrNotFound.
	GetRun(ctx context.Context, dagID, runID string) (Run, error)
	// ListRuns returns the runs f selects, in f's order, and how many match
	// in all (ignoring Limit and Offset).
	ListRuns(ctx context.Context, f RunFilter) ([]Run, int, error)
	// UpdateRun replaces a run's state, start_date, end_date, note and conf
	// (ErrNotFound if unknown).
	UpdateRun(ctx context.Context, r Run) error
	// ClaimRun is UpdateRun only while the stored run is still in state
	// from, in one statement: it reports whether this caller made the
	// change. Two schedulers starting the same queued run: one wins.
	ClaimRun(ctx context.Context, from RunState, r Run) (bool, error)
	// DeleteRun deletes a run with its tries and logs (ErrNotFound if
	// unknown).
	DeleteRun(ctx context.Context, dagID, runID string) error

	// PutTry creates or replaces the try (dag_id, run_id, task_id,
	// try_number).
	PutTry(ctx context.Context, t Try) error
	// ListTries returns every try of a run, by task_id then try_number.
	ListTries(ctx context.Context, dagID, runID string) ([]Try, error)
	// ClaimTry is PutTry only while the stored try is still in state from,
	// in one statement: it reports whether this caller made the change.
	// Two schedulers resolving one orphaned try: one wins.
	ClaimTry(ctx context.Context, from TaskState, t Try) (bool, error)
	// TriesInState returns the tries, of any run, in one of the states,
	// by dag_id, run_id, task_id, try_number.
	TriesInState(ctx context.Context, states ...TaskState) ([]Try, error)

	// AppendLog adds text at the end of a try's log.
	AppendLog(ctx context.Context, dagID, runID, taskID string, tryNumber int, text string) error
	// GetLog returns a try's whole log ("" if nothing was logged), or an
	// error matching ErrNotFound when the try does not exist.
	GetLog(ctx context.Context, dagID, runID, taskID string, tryNumber int) (string, error)

	// Heartbeat creates or replaces a scheduler process's row, and deletes
	// the rows whose latest heartbeat is a day older than j's.
	Heartbeat(ctx context.Context, j SchedulerJob) error
	// SchedulerJobs returns every scheduler process's row, by id.
	SchedulerJobs(ctx context.Context) ([]SchedulerJob, error)

	// The logins (users and the token secret) live in the metadata
	// store too: GetUser's unknown user matches login.ErrNoUser.
	login.Store

	// Queue returns a River client on the store's database, built with
	// cfg (whose Workers, Queues and PeriodicJobs the scheduler sets). Open
	// has migrated River's tables.
	Queue(cfg *river.Config) (Queue, error)

	// Close releases the database. Calls after Close, Close included, fail
	// with an error matching ErrStoreClosed.
	Close() error
}

// RunFilter selects runs. Zero fields select everything.
type RunFilter struct {
	DagID    string     // "" or "~": every DAG
	States   []RunState // any of these states
	RunTypes []RunType  // any of these run types
	// LogicalDateGTE and LogicalDateLTE bound the logical date.
	LogicalDateGTE, LogicalDateLTE time.Time
	// OrderBy is a column, "-" in front for descending: logical_date,
	// start_date, end_date, run_id, state [-logical_date].
	OrderBy string
	Limit   int // 0: no limit
	Offset  int
}

// Queue is the part of *river.Client[TTx] the scheduler uses, whatever the
// driver's transaction type.
type Queue interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
}
