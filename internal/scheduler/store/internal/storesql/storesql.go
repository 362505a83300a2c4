// Package storesql is the metadata store both SQL drivers run: every
// scheduler.Store method as SQL through database/sql, with a Dialect for what differs.
//
// The drivers (scheduler/store/sqlite, scheduler/store/postgres) open the
// database, migrate it, give their Dialect and add Queue. The SQL here is
// what SQLite and PostgreSQL both take (ON CONFLICT ... DO UPDATE,
// RETURNING, NULLS LAST); placeholders are written ? and numbered for
// PostgreSQL. No method holds a transaction or an open result set while it
// does anything else on the database: the SQLite store has one connection,
// which River shares.
package storesql

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/closeguard"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
)

// Dialect is what differs between the drivers.
type Dialect struct {
	// Name names the store in errors ("sqlite metadata store").
	Name string
	// Numbered says placeholders are $1, $2, ... (PostgreSQL), not ?.
	Numbered bool
	// Time gives the stored form of a time that is not zero (zero times are
	// stored as NULL). Whatever it gives must come back from a scan as a
	// time.Time or as RFC 3339 text, and sort as the times do.
	Time func(time.Time) any
	// NoLimit is LIMIT's argument for "no limit" (SQLite: -1; PostgreSQL:
	// NULL).
	NoLimit any
	// Classify says what a driver's error means: scheduler.ErrExists for a
	// taken unique key or primary key, scheduler.ErrNotFound for a missing
	// parent row (a foreign key), nil for anything else.
	Classify func(error) error
}

// Store implements scheduler.Store but Queue (which the drivers add) on
// one database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	d       Dialect
	release func() error
	gate    *closeguard.Gate
}

// New returns the store on db, whose tables the driver has migrated.
// Close closes the gate, then calls release (which closes db).
func New(db *sql.DB, d Dialect, release func() error) *Store {
	return &Store{db: db, d: d, release: release, gate: closeguard.New(d.Name, scheduler.ErrStoreClosed)}
}

// Enter admits one call named op, for a driver's own methods: it fails
// with an error matching scheduler.ErrStoreClosed after Close; otherwise the caller must
// call leave when done, and Close waits for it.
func (s *Store) Enter(op string) (leave func(), err error) {
	if err := s.gate.Enter(op); err != nil {
		return nil, err
	}
	return s.gate.Leave, nil
}

// Close waits for calls in progress and releases the database. Every
// later call, Close included, returns an error matching
// scheduler.ErrStoreClosed.
func (s *Store) Close() error {
	return s.gate.Close(s.release)
}

// bind numbers the ? placeholders of query when the dialect wants $n.
// The store's SQL has no ? anywhere else.
func (s *Store) bind(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(query, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			b.WriteString(p + "$" + strconv.Itoa(n))
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

// time gives the stored form of t: NULL when zero.
func (s *Store) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.Time(t)
}

// fail wraps err, from the operation what, so that errors.Is matches what
// the dialect classifies it as while the driver's error stays reachable
// with errors.As.
func (s *Store) fail(err error, what string) error {
	if kind := s.d.Classify(err); kind != nil {
		return fmt.Errorf("%s: %s: %w: %w", s.d.Name, what, kind, err)
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, what, err)
}

// notFound is the error of an operation on a row that is not there.
func (s *Store) notFound(what string) error {
	return fmt.Errorf("%s: %s: %w", s.d.Name, what, scheduler.ErrNotFound)
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.bind(query), args...)
}

// execOne runs a statement that must change a row: none changed is
// ErrNotFound.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return s.fail(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.fail(err, what)
	}
	if n == 0 {
		return s.notFound(what)
	}
	return nil
}

// getOne scans the one row a query selects; none is ErrNotFound.
func getOne[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(s.db.QueryRowContext(ctx, s.bind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, s.notFound(what)
	}
	if err != nil {
		var zero T
		return zero, s.fail(err, what)
	}
	return v, nil
}

// list scans every row a query selects and closes them before it returns,
// giving an empty (not nil) slice when there are none, so that lists
// encode as [] in JSON.
func list[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.bind(query), args...)
	if err != nil {
		return nil, s.fail(err, what)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.fail(err, what)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(err, what)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

// nullTime scans a stored time into a time.Time in UTC: a time.Time
// (PostgreSQL's timestamptz) or RFC 3339 text (what the SQLite store
// writes); NULL is the zero time.
type nullTime struct{ t *time.Time }

func (n nullTime) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case nil:
		*n.t = time.Time{}
		return nil
	case time.Time:
		*n.t = v.UTC()
		return nil
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("time column holds %T", src)
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*n.t = t.UTC()
	return nil
}

// placeholders is "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys[S ~string](ss []S) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = string(v)
	}
	return out
}

const dagColumns = `dag_id, is_paused, owner, description, schedule_interval, fileloc, last_parsed_time, next_dagrun`

func scanDAG(row scanner) (scheduler.DAGState, error) {
	var d scheduler.DAGState
	err := row.Scan(&d.DagID, &d.IsPaused, &d.Owner, &d.Description, &d.Schedule, &d.Fileloc,
		nullTime{&d.LastParsed}, nullTime{&d.NextDagRun})
	return d, err
}

// SyncDAG records a DAG's definition: a new DAG is created paused as
// pausedIfNew says; a known one keeps is_paused and takes every other field
// of d (next_dagrun included).
func (s *Store) SyncDAG(ctx context.Context, d scheduler.DAGState, pausedIfNew bool) (scheduler.DAGState, error) {
	leave, err := s.Enter("sync dag")
	if err != nil {
		return scheduler.DAGState{}, err
	}
	defer leave()
	return getOne(ctx, s, "sync dag "+d.DagID, scanDAG, `INSERT INTO dag (`+dagColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (dag_id) DO UPDATE SET owner = excluded.owner, description = excluded.description,
			schedule_interval = excluded.schedule_interval, fileloc = excluded.fileloc,
			last_parsed_time = excluded.last_parsed_time, next_dagrun = excluded.next_dagrun
		RETURNING `+dagColumns,
		d.DagID, pausedIfNew, d.Owner, text(d.Description), d.Schedule, d.Fileloc,
		s.time(d.LastParsed), s.time(d.NextDagRun))
}

// GetDAG returns a DAG's state, or an error matching scheduler.ErrNotFound.
func (s *Store) GetDAG(ctx context.Context, dagID string) (scheduler.DAGState, error) {
	leave, err := s.Enter("get dag")
	if err != nil {
		return scheduler.DAGState{}, err
	}
	defer leave()
	return getOne(ctx, s, "get dag "+dagID, scanDAG, `SELECT `+dagColumns+` FROM dag WHERE dag_id = ?`, dagID)
}

// ListDAGs returns every DAG, by dag_id.
func (s *Store) ListDAGs(ctx context.Context) ([]scheduler.DAGState, error) {
	leave, err := s.Enter("list dags")
	if err != nil {
		return nil, err
	}
	defer leave()
	return list(ctx, s, "list dags", scanDAG, `SELECT `+dagColumns+` FROM dag ORDER BY dag_id`)
}

// SetPaused pauses or unpauses a DAG (ErrNotFound if unknown).
func (s *Store) SetPaused(ctx context.Context, dagID string, paused bool) error {
	leave, err := s.Enter("set paused")
	if err != nil {
		return err
	}
	defer leave()
	return s.execOne(ctx, "set paused "+dagID, `UPDATE dag SET is_paused = ? WHERE dag_id = ?`, paused, dagID)
}

// SetNextDagRun records the logical date of a DAG's next scheduled run
// (zero: none; ErrNotFound if the DAG is unknown).
func (s *Store) SetNextDagRun(ctx context.Context, dagID string, next time.Time) error {
	leave, err := s.Enter("set next dagrun")
	if err != nil {
		return err
	}
	defer leave()
	return s.execOne(ctx, "set next dagrun "+dagID, `UPDATE dag SET next_dagrun = ? WHERE dag_id = ?`,
		s.time(next), dagID)
}

const runColumns = `dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end, state,
	conf, external_trigger, queued_at, start_date, end_date, note`

func scanRun(row scanner) (scheduler.Run, error) {
	var r scheduler.Run
	var conf []byte
	if err := row.Scan(&r.DagID, &r.RunID, &r.RunType, nullTime{&r.LogicalDate},
		nullTime{&r.DataIntervalStart}, nullTime{&r.DataIntervalEnd}, &r.State, &conf,
		&r.ExternalTrigger, nullTime{&r.QueuedAt}, nullTime{&r.StartDate}, nullTime{&r.EndDate}, &r.Note); err != nil {
		return scheduler.Run{}, err
	}
	m, err := decodeConf(conf)
	if err != nil {
		return scheduler.Run{}, fmt.Errorf("run %s/%s: %w", r.DagID, r.RunID, err)
	}
	r.Conf = m
	return r, nil
}

// CreateRun stores a new run; a taken (dag_id, run_id) or (dag_id,
// logical_date) is an error matching scheduler.ErrExists. A run without a
// logical date takes no slot.
func (s *Store) CreateRun(ctx context.Context, r scheduler.Run) error {
	leave, err := s.Enter("create run")
	if err != nil {
		return err
	}
	defer leave()
	what := "create run " + r.DagID + "/" + r.RunID
	conf, err := encodeConf(r.Conf)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.d.Name, what, err)
	}
	if _, err := s.exec(ctx, `INSERT INTO dag_run (`+runColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.DagID, r.RunID, r.RunType, s.time(r.LogicalDate), s.time(r.DataIntervalStart),
		s.time(r.DataIntervalEnd), r.State, conf, r.ExternalTrigger, s.time(r.QueuedAt),
		s.time(r.StartDate), s.time(r.EndDate), text(r.Note)); err != nil {
		return s.fail(err, what)
	}
	return nil
}

// GetRun returns a run, or an error matching scheduler.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, dagID, runID string) (scheduler.Run, error) {
	leave, err := s.Enter("get run")
	if err != nil {
		return scheduler.Run{}, err
	}
	defer leave()
	return getOne(ctx, s, "get run "+dagID+"/"+runID, scanRun,
		`SELECT `+runColumns+` FROM dag_run WHERE dag_id = ? AND run_id = ?`, dagID, runID)
}

// ListRuns returns the runs f selects in f's order, and how many match in
// all. The count and the page are two statements: a run created between
// them may show in one and not the other.
func (s *Store) ListRuns(ctx context.Context, f scheduler.RunFilter) ([]scheduler.Run, int, error) {
	leave, err := s.Enter("list runs")
	if err != nil {
		return nil, 0, err
	}
	defer leave()
	column, desc, err := check(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", s.d.Name, err)
	}
	var where []string
	var args []any
	if dag, ok := dagFilter(f); ok {
		where = append(where, "dag_id = ?")
		args = append(args, dag)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
		args = append(args, anys(f.States)...)
	}
	if len(f.RunTypes) > 0 {
		where = append(where, "run_type IN ("+placeholders(len(f.RunTypes))+")")
		args = append(args, anys(f.RunTypes)...)
	}
	if !f.LogicalDateGTE.IsZero() {
		where = append(where, "logical_date >= ?")
		args = append(args, s.time(f.LogicalDateGTE))
	}
	if !f.LogicalDateLTE.IsZero() {
		where = append(where, "logical_date <= ?")
		args = append(args, s.time(f.LogicalDateLTE))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.db.QueryRowContext(ctx, s.bind(`SELECT count(*) FROM dag_run`+cond), args...).Scan(&total); err != nil {
		return nil, 0, s.fail(err, "list runs: count")
	}
	limit := s.d.NoLimit
	if f.Limit > 0 {
		limit = f.Limit
	}
	runs, err := list(ctx, s, "list runs", scanRun, `SELECT `+runColumns+` FROM dag_run`+cond+
		orderClause(column, desc)+` LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	return runs, total, nil
}

// UpdateRun replaces a run's state, start_date, end_date, note and conf
// (ErrNotFound if unknown).
func (s *Store) UpdateRun(ctx context.Context, r scheduler.Run) error {
	leave, err := s.Enter("update run")
	if err != nil {
		return err
	}
	defer leave()
	what := "update run " + r.DagID + "/" + r.RunID
	conf, err := encodeConf(r.Conf)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.d.Name, what, err)
	}
	return s.execOne(ctx, what, `UPDATE dag_run SET state = ?, start_date = ?, end_date = ?, note = ?, conf = ?
		WHERE dag_id = ? AND run_id = ?`,
		r.State, s.time(r.StartDate), s.time(r.EndDate), text(r.Note), conf, r.DagID, r.RunID)
}

// ClaimRun updates the run like UpdateRun, only while its state is from.
func (s *Store) ClaimRun(ctx context.Context, from scheduler.RunState, r scheduler.Run) (bool, error) {
	leave, err := s.Enter("claim run")
	if err != nil {
		return false, err
	}
	defer leave()
	what := "claim run " + r.DagID + "/" + r.RunID
	conf, err := encodeConf(r.Conf)
	if err != nil {
		return false, fmt.Errorf("%s: %s: %w", s.d.Name, what, err)
	}
	res, err := s.exec(ctx, `UPDATE dag_run SET state = ?, start_date = ?, end_date = ?, note = ?, conf = ?
		WHERE dag_id = ? AND run_id = ? AND state = ?`,
		r.State, s.time(r.StartDate), s.time(r.EndDate), text(r.Note), conf, r.DagID, r.RunID, from)
	if err != nil {
		return false, s.fail(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.fail(err, what)
	}
	return n == 1, nil
}

// DeleteRun deletes a run; its tries and logs go with it (foreign keys ON
// DELETE CASCADE, in the same statement). ErrNotFound if unknown.
func (s *Store) DeleteRun(ctx context.Context, dagID, runID string) error {
	leave, err := s.Enter("delete run")
	if err != nil {
		return err
	}
	defer leave()
	return s.execOne(ctx, "delete run "+dagID+"/"+runID,
		`DELETE FROM dag_run WHERE dag_id = ? AND run_id = ?`, dagID, runID)
}

const tryColumns = `dag_id, run_id, task_id, try_number, max_tries, state, start_date, end_date,
	hostname, error, job_id, queued_at`

func scanTry(row scanner) (scheduler.Try, error) {
	var t scheduler.Try
	err := row.Scan(&t.DagID, &t.RunID, &t.TaskID, &t.TryNumber, &t.MaxTries, &t.State,
		nullTime{&t.StartDate}, nullTime{&t.EndDate}, &t.Hostname, &t.Error, &t.JobID, nullTime{&t.QueuedAt})
	return t, err
}

// PutTry creates or replaces the try (dag_id, run_id, task_id,
// try_number). Replacing updates the row in place, so the try's log stays.
// A try of a run that does not exist is an error matching
// scheduler.ErrNotFound.
func (s *Store) PutTry(ctx context.Context, t scheduler.Try) error {
	leave, err := s.Enter("put try")
	if err != nil {
		return err
	}
	defer leave()
	if _, err := s.exec(ctx, `INSERT INTO task_instance_try (`+tryColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (dag_id, run_id, task_id, try_number) DO UPDATE SET
			max_tries = excluded.max_tries, state = excluded.state, start_date = excluded.start_date,
			end_date = excluded.end_date, hostname = excluded.hostname, error = excluded.error,
			job_id = excluded.job_id, queued_at = excluded.queued_at`,
		t.DagID, t.RunID, t.TaskID, t.TryNumber, t.MaxTries, t.State, s.time(t.StartDate),
		s.time(t.EndDate), t.Hostname, text(t.Error), t.JobID, s.time(t.QueuedAt)); err != nil {
		return s.fail(err, fmt.Sprintf("put try %s/%s/%s#%d (no such run?)", t.DagID, t.RunID, t.TaskID, t.TryNumber))
	}
	return nil
}

// ClaimTry updates the try like PutTry, only while its state is from.
func (s *Store) ClaimTry(ctx context.Context, from scheduler.TaskState, t scheduler.Try) (bool, error) {
	leave, err := s.Enter("claim try")
	if err != nil {
		return false, err
	}
	defer leave()
	what := fmt.Sprintf("claim try %s/%s/%s#%d", t.DagID, t.RunID, t.TaskID, t.TryNumber)
	res, err := s.exec(ctx, `UPDATE task_instance_try SET max_tries = ?, state = ?, start_date = ?, end_date = ?,
		hostname = ?, error = ?, job_id = ?, queued_at = ?
		WHERE dag_id = ? AND run_id = ? AND task_id = ? AND try_number = ? AND state = ?`,
		t.MaxTries, t.State, s.time(t.StartDate), s.time(t.EndDate), t.Hostname, text(t.Error), t.JobID,
		s.time(t.QueuedAt), t.DagID, t.RunID, t.TaskID, t.TryNumber, from)
	if err != nil {
		return false, s.fail(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.fail(err, what)
	}
	return n == 1, nil
}

// ListTries returns every try of a run, by task_id then try_number.
func (s *Store) ListTries(ctx context.Context, dagID, runID string) ([]scheduler.Try, error) {
	leave, err := s.Enter("list tries")
	if err != nil {
		return nil, err
	}
	defer leave()
	return list(ctx, s, "list tries "+dagID+"/"+runID, scanTry, `SELECT `+tryColumns+` FROM task_instance_try
		WHERE dag_id = ? AND run_id = ? ORDER BY task_id, try_number`, dagID, runID)
}

// TriesInState returns the tries, of any run, in one of the states, by
// dag_id, run_id, task_id, try_number. No states select none.
func (s *Store) TriesInState(ctx context.Context, states ...scheduler.TaskState) ([]scheduler.Try, error) {
	leave, err := s.Enter("tries in state")
	if err != nil {
		return nil, err
	}
	defer leave()
	if len(states) == 0 {
		return []scheduler.Try{}, nil
	}
	return list(ctx, s, "tries in state", scanTry, `SELECT `+tryColumns+` FROM task_instance_try
		WHERE state IN (`+placeholders(len(states))+`)
		ORDER BY dag_id, run_id, task_id, try_number`, anys(states)...)
}

// AppendLog adds text at the end of a try's log (a try that does not exist
// is an error matching scheduler.ErrNotFound). NUL bytes and invalid UTF-8,
// which PostgreSQL's text refuses, are stored as U+FFFD.
func (s *Store) AppendLog(ctx context.Context, dagID, runID, taskID string, tryNumber int, chunk string) error {
	leave, err := s.Enter("append log")
	if err != nil {
		return err
	}
	defer leave()
	if _, err := s.exec(ctx, `INSERT INTO task_log (dag_id, run_id, task_id, try_number, text)
		VALUES (?, ?, ?, ?, ?)`, dagID, runID, taskID, tryNumber, text(chunk)); err != nil {
		return s.fail(err, fmt.Sprintf("append log of %s/%s/%s#%d (no such try?)", dagID, runID, taskID, tryNumber))
	}
	return nil
}

// GetLog returns a try's whole log ("" if nothing was logged), or an error
// matching scheduler.ErrNotFound when the try does not exist.
func (s *Store) GetLog(ctx context.Context, dagID, runID, taskID string, tryNumber int) (string, error) {
	leave, err := s.Enter("get log")
	if err != nil {
		return "", err
	}
	defer leave()
	what := fmt.Sprintf("get log of %s/%s/%s#%d", dagID, runID, taskID, tryNumber)
	// The try's row and its chunks in one statement, so that a try deleted
	// between two statements cannot give "" instead of ErrNotFound. A try
	// with no log gives one row with a NULL text.
	chunks, err := list(ctx, s, what, func(row scanner) (sql.NullString, error) {
		var c sql.NullString
		err := row.Scan(&c)
		return c, err
	}, `SELECT l.text FROM task_instance_try t
		LEFT JOIN task_log l ON l.dag_id = t.dag_id AND l.run_id = t.run_id
			AND l.task_id = t.task_id AND l.try_number = t.try_number
		WHERE t.dag_id = ? AND t.run_id = ? AND t.task_id = ? AND t.try_number = ?
		ORDER BY l.id`, dagID, runID, taskID, tryNumber)
	if err != nil {
		return "", err
	}
	if len(chunks) == 0 {
		return "", s.notFound(what)
	}
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString(c.String)
	}
	return b.String(), nil
}

// Heartbeat creates or replaces the process's row and prunes the rows of
// processes silent for a day.
func (s *Store) Heartbeat(ctx context.Context, j scheduler.SchedulerJob) error {
	leave, err := s.Enter("heartbeat")
	if err != nil {
		return err
	}
	defer leave()
	what := "heartbeat " + j.ID
	if _, err := s.exec(ctx, `INSERT INTO job (id, hostname, start_date, latest_heartbeat) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, start_date = excluded.start_date,
			latest_heartbeat = excluded.latest_heartbeat`,
		j.ID, j.Hostname, s.time(j.StartDate), s.time(j.LatestHeartbeat)); err != nil {
		return s.fail(err, what)
	}
	if _, err := s.exec(ctx, `DELETE FROM job WHERE latest_heartbeat < ?`, s.time(j.LatestHeartbeat.Add(-24*time.Hour))); err != nil {
		return s.fail(err, what)
	}
	return nil
}

// SchedulerJobs returns every process's row, by id.
func (s *Store) SchedulerJobs(ctx context.Context) ([]scheduler.SchedulerJob, error) {
	leave, err := s.Enter("scheduler jobs")
	if err != nil {
		return nil, err
	}
	defer leave()
	return list(ctx, s, "scheduler jobs", func(row scanner) (scheduler.SchedulerJob, error) {
		var j scheduler.SchedulerJob
		err := row.Scan(&j.ID, &j.Hostname, nullTime{&j.StartDate}, nullTime{&j.LatestHeartbeat})
		return j, err
	}, `SELECT id, hostname, start_date, latest_heartbeat FROM job WHERE job_type = 'SchedulerJob' ORDER BY id`)
}

func scanUser(row scanner) (login.User, error) {
	var u login.User
	err := row.Scan(&u.Name, &u.Role, &u.PasswordHash)
	return u, err
}

// GetUser returns a user, or an error matching login.ErrNoUser (and
// scheduler.ErrNotFound).
func (s *Store) GetUser(ctx context.Context, name string) (login.User, error) {
	leave, err := s.Enter("get user")
	if err != nil {
		return login.User{}, err
	}
	defer leave()
	u, err := getOne(ctx, s, "get user "+name, scanUser, `SELECT name, role, password_hash FROM ab_user WHERE name = ?`, name)
	if errors.Is(err, scheduler.ErrNotFound) {
		return login.User{}, fmt.Errorf("%w: %w", login.ErrNoUser, err)
	}
	return u, err
}

// PutUser creates or replaces a user.
func (s *Store) PutUser(ctx context.Context, u login.User) error {
	leave, err := s.Enter("put user")
	if err != nil {
		return err
	}
	defer leave()
	if _, err := s.exec(ctx, `INSERT INTO ab_user (name, role, password_hash) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash`,
		u.Name, u.Role, u.PasswordHash); err != nil {
		return s.fail(err, "put user "+u.Name)
	}
	return nil
}

// Secret returns the secret stored under name, storing value first when
// there is none; the first value stored wins.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	leave, err := s.Enter("secret")
	if err != nil {
		return nil, err
	}
	defer leave()
	b := base64.StdEncoding
	if _, err := s.exec(ctx, `INSERT INTO secret (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
		name, b.EncodeToString(value)); err != nil {
		return nil, s.fail(err, "store secret "+name)
	}
	stored, err := getOne(ctx, s, "secret "+name, func(row scanner) (string, error) {
		var v string
		err := row.Scan(&v)
		return v, err
	}, `SELECT value FROM secret WHERE name = ?`, name)
	if err != nil {
		return nil, err
	}
	v, err := b.DecodeString(stored)
	if err != nil {
		return nil, fmt.Errorf("%s: secret %s is not base64 (was it edited by hand?): %w", s.d.Name, name, err)
	}
	return v, nil
}
