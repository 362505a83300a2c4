package restapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

// ts renders a time as Airflow does (ISO 8601 with offset), null when zero.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

func scheduleInterval(spec string) any {
	if spec == "" || spec == "none" {
		return nil
	}
	if strings.HasPrefix(spec, "@every ") {
		d, err := time.ParseDuration(strings.TrimPrefix(spec, "@every "))
		if err == nil {
			return map[string]any{"__type": "TimeDelta", "days": int(d.Hours()) / 24,
				"seconds": int(d.Seconds()) % 86400, "microseconds": int(d.Microseconds() % 1e6)}
		}
	}
	return map[string]any{"__type": "CronExpression", "value": spec}
}

// dagJSON is a DAG as Airflow's API shows it.
func (a *API) dagJSON(st scheduler.DAGState) map[string]any {
	d := a.svc.Definition(st.DagID)
	owners := []string{}
	if st.Owner != "" {
		owners = []string{st.Owner}
	}
	tags := []map[string]string{}
	maxActive := scheduler.DefaultMaxActiveRuns
	var nextEnd any
	if d != nil {
		for _, t := range d.Tags {
			tags = append(tags, map[string]string{"name": t})
		}
		maxActive = d.MaxActiveRuns
		if sched, err := scheduler.ParseSchedule(d.Schedule, d.Timezone); err == nil && !st.NextDagRun.IsZero() {
			if iv, ok := sched.First(st.NextDagRun); ok {
				nextEnd = ts(iv.End)
			}
		}
	}
	return map[string]any{
		"dag_id": st.DagID, "root_dag_id": nil, "is_paused": st.IsPaused, "is_active": d != nil, "is_subdag": false,
		"fileloc": st.Fileloc, "file_token": "", "owners": owners, "description": st.Description,
		"schedule_interval": scheduleInterval(st.Schedule), "timetable_description": st.Schedule, "tags": tags,
		"max_active_runs": maxActive, "max_active_tasks": 16, "has_task_concurrency_limits": false,
		"has_import_errors": false, "next_dagrun": ts(st.NextDagRun), "next_dagrun_data_interval_start": ts(st.NextDagRun),
		"next_dagrun_data_interval_end": nextEnd, "next_dagrun_create_after": nextEnd,
		"last_parsed_time": ts(st.LastParsed), "default_view": "grid",
	}
}

func (a *API) listDAGs(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := a.page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	all, err := a.svc.Store().ListDAGs(r.Context())
	if err != nil {
		a.fail(w, err, "DAGs")
		return
	}
	q := r.URL.Query()
	pattern := q.Get("dag_id_pattern")
	var paused *bool
	if v := q.Get("paused"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problem(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("paused %q is not true or false", v))
			return
		}
		paused = &b
	}
	var sel []scheduler.DAGState
	for _, st := range all {
		if pattern != "" && !strings.Contains(st.DagID, pattern) {
			continue
		}
		if paused != nil && st.IsPaused != *paused {
			continue
		}
		sel = append(sel, st)
	}
	out := []map[string]any{}
	for i := offset; i < len(sel) && len(out) < limit; i++ {
		out = append(out, a.dagJSON(sel[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"dags": out, "total_entries": len(sel)})
}

func (a *API) getDAG(w http.ResponseWriter, r *http.Request) {
	st, err := a.svc.Store().GetDAG(r.Context(), r.PathValue("dag_id"))
	if err != nil {
		a.fail(w, err, "DAG")
		return
	}
	writeJSON(w, http.StatusOK, a.dagJSON(st))
}

// patchDAG sets is_paused, the one field Airflow's PATCH changes.
func (a *API) patchDAG(w http.ResponseWriter, r *http.Request) {
	if m := r.URL.Query().Get("update_mask"); m != "" && m != "is_paused" {
		problem(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("update_mask %q: only is_paused can be updated", m))
		return
	}
	var body struct {
		IsPaused *bool `json:"is_paused"`
	}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	if body.IsPaused == nil {
		problem(w, http.StatusBadRequest, "Bad Request", "is_paused: required (true or false)")
		return
	}
	st, err := a.svc.SetPaused(r.Context(), r.PathValue("dag_id"), *body.IsPaused)
	if err != nil {
		a.fail(w, err, "DAG")
		return
	}
	writeJSON(w, http.StatusOK, a.dagJSON(st))
}

// runJSON is a DAG run as Airflow's API shows it.
func runJSON(run scheduler.Run) map[string]any {
	conf := run.Conf
	if conf == nil {
		conf = map[string]any{}
	}
	var note any
	if run.Note != "" {
		note = run.Note
	}
	return map[string]any{
		"dag_run_id": run.RunID, "dag_id": run.DagID, "logical_date": ts(run.LogicalDate), "execution_date": ts(run.LogicalDate),
		"start_date": ts(run.StartDate), "end_date": ts(run.EndDate), "data_interval_start": ts(run.DataIntervalStart),
		"data_interval_end": ts(run.DataIntervalEnd), "last_scheduling_decision": nil, "run_type": run.RunType,
		"state": run.State, "external_trigger": run.ExternalTrigger, "conf": conf, "note": note, "queued_at": ts(run.QueuedAt),
	}
}

var runOrders = map[string]bool{"logical_date": true, "execution_date": true, "start_date": true, "end_date": true,
	"run_id": true, "dag_run_id": true, "state": true, "id": true}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := a.page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	q := r.URL.Query()
	states := make([]scheduler.RunState, len(q["state"]))
	for i, st := range q["state"] {
		states[i] = scheduler.RunState(st)
	}
	f := scheduler.RunFilter{DagID: r.PathValue("dag_id"), States: states, Limit: limit, Offset: offset, OrderBy: "-logical_date"}
	if f.DagID != "~" {
		if _, err := a.svc.Store().GetDAG(r.Context(), f.DagID); err != nil {
			a.fail(w, err, "DAG")
			return
		}
	}
	if o := q.Get("order_by"); o != "" {
		col := strings.TrimPrefix(o, "-")
		if !runOrders[col] {
			problem(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("order_by %q: use logical_date, start_date, end_date, dag_run_id or state, with - for descending", o))
			return
		}
		switch col {
		case "execution_date", "id":
			col = "logical_date"
		case "dag_run_id":
			col = "run_id"
		}
		f.OrderBy = strings.Repeat("-", len(o)-len(strings.TrimPrefix(o, "-"))) + col
	}
	for key, dst := range map[string]*time.Time{"execution_date_gte": &f.LogicalDateGTE, "execution_date_lte": &f.LogicalDateLTE,
		"logical_date_gte": &f.LogicalDateGTE, "logical_date_lte": &f.LogicalDateLTE} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				problem(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("%s %q is not an ISO 8601 date-time with an offset", key, v))
				return
			}
			*dst = t
		}
	}
	runs, total, err := a.svc.Store().ListRuns(r.Context(), f)
	if err != nil {
		a.fail(w, err, "DAG runs")
		return
	}
	out := make([]map[string]any, 0, len(runs))
	for _, run := range runs {
		out = append(out, runJSON(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"dag_runs": out, "total_entries": total})
}

// triggerRun is POST .../dagRuns: {"dag_run_id"?, "logical_date"? (or
// execution_date), "conf"?, "note"?}.
func (a *API) triggerRun(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RunID         string          `json:"dag_run_id"`
		LogicalDate   *time.Time      `json:"logical_date"`
		ExecutionDate *time.Time      `json:"execution_date"`
		Conf          json.RawMessage `json:"conf"`
		Note          string          `json:"note"`
		// Airflow 2.6 also accepts these; they are ignored, as there.
		DataIntervalStart *time.Time `json:"data_interval_start"`
		DataIntervalEnd   *time.Time `json:"data_interval_end"`
	}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	var conf map[string]any
	if len(body.Conf) > 0 && string(body.Conf) != "null" {
		if err := json.Unmarshal(body.Conf, &conf); err != nil {
			problem(w, http.StatusBadRequest, "Bad Request", "conf: must be a JSON object")
			return
		}
	}
	var logical time.Time
	switch {
	case body.LogicalDate != nil && body.ExecutionDate != nil:
		problem(w, http.StatusBadRequest, "Bad Request", "give logical_date or execution_date, not both")
		return
	case body.LogicalDate != nil:
		logical = *body.LogicalDate
	case body.ExecutionDate != nil:
		logical = *body.ExecutionDate
	}
	run, err := a.svc.Trigger(r.Context(), r.PathValue("dag_id"), conf, logical, body.RunID)
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	if body.Note != "" {
		if run, err = a.svc.SetNote(r.Context(), run.DagID, run.RunID, body.Note); err != nil {
			a.fail(w, err, "DAG run")
			return
		}
	}
	writeJSON(w, http.StatusOK, runJSON(run))
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := a.svc.Store().GetRun(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id"))
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	writeJSON(w, http.StatusOK, runJSON(run))
}

// patchRun sets a run's state: {"state": "success" | "failed" | "queued"}.
func (a *API) patchRun(w http.ResponseWriter, r *http.Request) {
	var body struct {
		State scheduler.RunState `json:"state"`
	}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	run, err := a.svc.Mark(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id"), body.State)
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	writeJSON(w, http.StatusOK, runJSON(run))
}

func (a *API) deleteRun(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.Delete(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id")); err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// clearRun is POST .../clear {"dry_run": bool}: a dry run lists the task
// instances that would run again; otherwise the run is queued again.
func (a *API) clearRun(w http.ResponseWriter, r *http.Request) {
	body := struct {
		DryRun *bool `json:"dry_run"`
	}{}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	dagID, runID := r.PathValue("dag_id"), r.PathValue("run_id")
	if body.DryRun == nil || *body.DryRun {
		// Airflow's default for dry_run is true.
		tis, err := a.svc.TaskInstances(r.Context(), dagID, runID)
		if err != nil {
			a.fail(w, err, "DAG run")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"task_instances": tiList(tis), "total_entries": len(tis)})
		return
	}
	run, err := a.svc.Clear(r.Context(), dagID, runID)
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	writeJSON(w, http.StatusOK, runJSON(run))
}

// tiJSON is a task instance as Airflow's API shows it.
func tiJSON(ti scheduler.TaskInstance) map[string]any {
	var state, errText any
	if ti.State != "" {
		state = ti.State
	}
	if ti.Error != "" {
		errText = ti.Error
	}
	var dur any
	if !ti.StartDate.IsZero() {
		dur = ti.Duration().Seconds()
	}
	return map[string]any{
		"task_id": ti.TaskID, "dag_id": ti.DagID, "dag_run_id": ti.RunID, "execution_date": ts(ti.LogicalDate),
		"start_date": ts(ti.StartDate), "end_date": ts(ti.EndDate), "duration": dur, "state": state,
		"try_number": ti.TryNumber, "map_index": -1, "max_tries": ti.MaxTries, "hostname": ti.Hostname, "unixname": "userstream",
		"pool": "default_pool", "pool_slots": 1, "queue": "default", "priority_weight": 1, "operator": "PythonOperator",
		"queued_when": ts(ti.QueuedAt), "pid": nil, "executor_config": "{}", "sla_miss": nil, "rendered_fields": map[string]any{},
		"trigger": nil, "triggerer_job": nil, "note": errText,
	}
}

func tiList(tis []scheduler.TaskInstance) []map[string]any {
	out := make([]map[string]any, 0, len(tis))
	for _, ti := range tis {
		out = append(out, tiJSON(ti))
	}
	return out
}

func (a *API) listTIs(w http.ResponseWriter, r *http.Request) {
	tis, err := a.svc.TaskInstances(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id"))
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"task_instances": tiList(tis), "total_entries": len(tis)})
}

func (a *API) getTI(w http.ResponseWriter, r *http.Request) {
	tis, err := a.svc.TaskInstances(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id"))
	if err != nil {
		a.fail(w, err, "DAG run")
		return
	}
	for _, ti := range tis {
		if ti.TaskID == r.PathValue("task_id") {
			writeJSON(w, http.StatusOK, tiJSON(ti))
			return
		}
	}
	a.fail(w, fmt.Errorf("task %q: %w", r.PathValue("task_id"), scheduler.ErrNotFound), "Task instance")
}

// getLog is .../logs/{try}: text/plain when asked for, else Airflow's JSON
// {"continuation_token", "content"}.
func (a *API) getLog(w http.ResponseWriter, r *http.Request) {
	try, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || try < 1 {
		problem(w, http.StatusBadRequest, "Bad Request", fmt.Sprintf("task_try_number %q is not a number of 1 or more", r.PathValue("try")))
		return
	}
	text, err := a.svc.Store().GetLog(r.Context(), r.PathValue("dag_id"), r.PathValue("run_id"), r.PathValue("task_id"), try)
	if err != nil {
		if errors.Is(err, scheduler.ErrNotFound) {
			problem(w, http.StatusNotFound, "Task instance not found", fmt.Sprintf("no try %d of task %s in run %s", try, r.PathValue("task_id"), r.PathValue("run_id")))
			return
		}
		a.fail(w, err, "Log")
		return
	}
	// The whole log is served at once. Airflow's answer always carries a
	// continuation token saying where the log ended (its clients require
	// one); asked again with it, the API sends only what came after.
	end := len(text)
	if tok := r.URL.Query().Get("token"); tok != "" {
		pos, err := logPos(tok)
		if err != nil || pos > len(text) {
			problem(w, http.StatusBadRequest, "Bad Request", "token: not a continuation_token of this log")
			return
		}
		text = text[pos:]
	}
	if strings.Contains(r.Header.Get("Accept"), "text/plain") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(text))
		return
	}
	host := path.Join(r.PathValue("dag_id"), r.PathValue("run_id"), r.PathValue("task_id"), strconv.Itoa(try))
	writeJSON(w, http.StatusOK, map[string]any{"continuation_token": logToken(end), "content": text, "log_path": host})
}

// logToken is a continuation token: unsigned, as it grants nothing the
// caller could not read anyway.
func logToken(pos int) string {
	b, _ := json.Marshal(map[string]any{"end_of_log": true, "log_pos": pos})
	return base64.RawURLEncoding.EncodeToString(b)
}

func logPos(token string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, err
	}
	var m struct {
		Pos *int `json:"log_pos"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Pos == nil || *m.Pos < 0 {
		return 0, errors.New("no log_pos")
	}
	return *m.Pos, nil
}

// backfill is POST .../backfill {"from_date", "to_date"}: not in Airflow 2's
// API (its backfill is a CLI command); the CLI's --api mode uses it.
func (a *API) backfill(w http.ResponseWriter, r *http.Request) {
	var body struct {
		From *time.Time `json:"from_date"`
		To   *time.Time `json:"to_date"`
	}
	if err := decode(r, &body); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	if body.From == nil || body.To == nil {
		problem(w, http.StatusBadRequest, "Bad Request", "from_date and to_date are required (ISO 8601)")
		return
	}
	created, skipped, err := a.svc.Backfill(r.Context(), r.PathValue("dag_id"), *body.From, *body.To)
	if err != nil {
		a.fail(w, err, "DAG")
		return
	}
	out := make([]map[string]any, 0, len(created))
	for _, run := range created {
		out = append(out, runJSON(run))
	}
	sk := make([]any, 0, len(skipped))
	for _, t := range skipped {
		sk = append(sk, ts(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"dag_runs": out, "total_entries": len(out), "skipped_logical_dates": sk})
}
