package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// ---- schemas ----

func (s *Server) loadSchemas(r *http.Request) (any, int, error) {
	if s.cfg.Registry == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the schema registry")
	}
	subs, global, err := s.cfg.Registry.subjects(r.Context())
	if err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("schema registry: %w", err)
	}
	return map[string]any{"Subjects": subs, "Global": global}, 0, nil
}

type schemaPage struct {
	Subject  string   `json:"subject"`
	Versions []int    `json:"versions"`
	Level    string   `json:"compatibility"`
	Version  int      `json:"version"`
	ID       int      `json:"id"`
	Schema   string   `json:"schema"`
	DiffA    int      `json:"diff_a,omitempty"`
	DiffB    int      `json:"diff_b,omitempty"`
	Diff     []diffOp `json:"diff,omitempty"`
	Check    string   `json:"-"`
	Checked  *sr.CheckCompatibilityResult
	CheckErr string `json:"check_error,omitempty"`
}

func (s *Server) schemaPage(r *http.Request) (schemaPage, int, error) {
	if s.cfg.Registry == nil {
		return schemaPage{}, http.StatusServiceUnavailable, errNotConnected("the schema registry")
	}
	ctx := r.Context()
	subject := r.PathValue("subject")
	subs, _, err := s.cfg.Registry.subjects(ctx)
	if err != nil {
		return schemaPage{}, http.StatusBadGateway, fmt.Errorf("schema registry: %w", err)
	}
	p := schemaPage{Subject: subject}
	for _, si := range subs {
		if si.Subject == subject {
			p.Versions, p.Level = si.Versions, si.Level
		}
	}
	if len(p.Versions) == 0 {
		return p, http.StatusNotFound, fmt.Errorf("subject %q: not found", subject)
	}
	p.Version = p.Versions[len(p.Versions)-1]
	if v := r.URL.Query().Get("version"); v != "" {
		if p.Version, err = strconv.Atoi(v); err != nil {
			return p, http.StatusBadRequest, fmt.Errorf("version %q is not a number", v)
		}
	}
	ss, err := s.cfg.Registry.version(ctx, subject, p.Version)
	if err != nil {
		return p, http.StatusNotFound, fmt.Errorf("%s version %d: %w", subject, p.Version, err)
	}
	p.ID, p.Schema = ss.ID, pretty(ss.Schema.Schema)
	q := r.URL.Query()
	if q.Get("a") != "" && q.Get("b") != "" {
		a, err1 := strconv.Atoi(q.Get("a"))
		b, err2 := strconv.Atoi(q.Get("b"))
		if err1 != nil || err2 != nil {
			return p, http.StatusBadRequest, errors.New("diff: a and b are version numbers")
		}
		sa, err := s.cfg.Registry.version(ctx, subject, a)
		if err != nil {
			return p, http.StatusNotFound, fmt.Errorf("version %d: %w", a, err)
		}
		sb, err := s.cfg.Registry.version(ctx, subject, b)
		if err != nil {
			return p, http.StatusNotFound, fmt.Errorf("version %d: %w", b, err)
		}
		p.DiffA, p.DiffB, p.Diff = a, b, diffLines(pretty(sa.Schema.Schema), pretty(sb.Schema.Schema))
	}
	return p, 0, nil
}

func (s *Server) loadSchema(r *http.Request) (any, int, error) { return s.schemaPage(r) }

// checkSchema checks a pasted schema against the subject's latest version,
// at the subject's compatibility level.
func (s *Server) checkSchema(w http.ResponseWriter, r *http.Request) {
	p, st, err := s.schemaPage(r)
	if err != nil {
		http.Error(w, err.Error(), st)
		return
	}
	p.Check = r.PostFormValue("schema")
	res, err := s.cfg.Registry.check(r.Context(), p.Subject, p.Check)
	if err != nil {
		p.CheckErr = err.Error()
	} else {
		p.Checked = &res
	}
	s.render(w, r, http.StatusOK, "schema", "Schema", p)
}

// pretty indents JSON (a schema), or returns it as it is.
func pretty(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// diffOp is one line of a diff: " " same, "-" only in a, "+" only in b.
type diffOp struct {
	Op   string `json:"op"`
	Line string `json:"line"`
}

// diffLines is a line diff by longest common subsequence (schemas are
// small).
func diffLines(a, b string) []diffOp {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			out = append(out, diffOp{" ", x[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffOp{"-", x[i]})
			i++
		default:
			out = append(out, diffOp{"+", y[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, diffOp{"-", x[i]})
	}
	for ; j < m; j++ {
		out = append(out, diffOp{"+", y[j]})
	}
	return out
}

// ---- DAGs ----

type dagRow struct {
	State   scheduler.DAGState `json:"dag"`
	Tags    []string           `json:"tags"`
	LastRun *scheduler.Run     `json:"last_run"`
	Runs    map[string]int     `json:"runs_by_state"`
}

func (s *Server) loadDAGs(r *http.Request) (any, int, error) {
	if s.cfg.Service == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the scheduler")
	}
	st := s.cfg.Service.Store()
	ctx := r.Context()
	dags, err := st.ListDAGs(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows := make([]dagRow, 0, len(dags))
	for _, d := range dags {
		row := dagRow{State: d, Runs: map[string]int{}}
		if def := s.cfg.Service.Definition(d.DagID); def != nil {
			row.Tags = def.Tags
		}
		runs, _, err := st.ListRuns(ctx, scheduler.RunFilter{DagID: d.DagID, OrderBy: "-logical_date", Limit: 1})
		if err != nil {
			return nil, 0, err
		}
		if len(runs) == 1 {
			row.LastRun = &runs[0]
		}
		for _, state := range []scheduler.RunState{scheduler.RunQueued, scheduler.RunRunning, scheduler.RunSuccess, scheduler.RunFailed} {
			_, n, err := st.ListRuns(ctx, scheduler.RunFilter{DagID: d.DagID, States: []scheduler.RunState{state}, Limit: 1})
			if err != nil {
				return nil, 0, err
			}
			row.Runs[string(state)] = n
		}
		rows = append(rows, row)
	}
	return map[string]any{"DAGs": rows}, 0, nil
}

// gridRun is one column of the grid: a run and its tasks' states, and
// how long each task's latest try took (the cell's title).
type gridRun struct {
	Run   scheduler.Run                  `json:"run"`
	Tasks map[string]scheduler.TaskState `json:"tasks"` // task id -> state
	Took  map[string]string              `json:"took"`  // task id -> duration of its latest try
}

// gridRuns is how many runs the grid shows.
const gridRuns = 25

type dagPage struct {
	DAG   scheduler.DAGState `json:"dag"`
	Tasks []string           `json:"tasks"`
	Runs  []gridRun          `json:"runs"`
	Total int                `json:"total_runs"`
	// Durations are the last runs' durations (?runs=, 50 by default),
	// oldest first: the chart and its table.
	Durations []runDuration `json:"durations"`
	Conf      string        `json:"-"`
}

func (s *Server) loadDAG(r *http.Request) (any, int, error) {
	if s.cfg.Service == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the scheduler")
	}
	ctx := r.Context()
	st := s.cfg.Service.Store()
	d, err := st.GetDAG(ctx, r.PathValue("dag"))
	if errors.Is(err, scheduler.ErrNotFound) {
		return nil, http.StatusNotFound, fmt.Errorf("DAG %q: not found", r.PathValue("dag"))
	}
	if err != nil {
		return nil, 0, err
	}
	n, err := runsParam(r)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	runs, total, err := st.ListRuns(ctx, scheduler.RunFilter{DagID: d.DagID, OrderBy: "-logical_date", Limit: max(n, gridRuns)})
	if err != nil {
		return nil, 0, err
	}
	p := dagPage{DAG: d, Total: total, Conf: `{"users": 1000}`, Durations: runDurations(runs[:min(n, len(runs))], time.Now())}
	runs = runs[:min(gridRuns, len(runs))]
	seen := map[string]bool{}
	if def := s.cfg.Service.Definition(d.DagID); def != nil {
		for _, t := range def.Tasks {
			p.Tasks, seen[t.TaskID] = append(p.Tasks, t.TaskID), true
		}
	}
	// Oldest on the left, as Airflow's grid.
	for i := len(runs) - 1; i >= 0; i-- {
		tis, err := s.cfg.Service.TaskInstances(ctx, d.DagID, runs[i].RunID)
		if err != nil {
			return nil, 0, err
		}
		g := gridRun{Run: runs[i], Tasks: map[string]scheduler.TaskState{}, Took: map[string]string{}}
		for _, ti := range tis {
			g.Tasks[ti.TaskID] = ti.State
			if !ti.StartDate.IsZero() {
				g.Took[ti.TaskID] = tookString(ti.Duration())
			}
			if !seen[ti.TaskID] {
				p.Tasks, seen[ti.TaskID] = append(p.Tasks, ti.TaskID), true
			}
		}
		p.Runs = append(p.Runs, g)
	}
	return p, 0, nil
}

type runPage struct {
	Run   scheduler.Run            `json:"run"`
	Tasks []scheduler.TaskInstance `json:"task_instances"`
	// Gantt is every try that started, on one time axis; its Rows are the
	// JSON's "gantt".
	Gantt *gantt     `json:"-"`
	Tries []ganttRow `json:"gantt"`
	// Messages is the message browser filtered by the run's id (the
	// producer's run id header); Users the users page filtered by it.
	Messages string `json:"messages"`
	Users    string `json:"users"`
}

func (s *Server) loadRun(r *http.Request) (any, int, error) {
	if s.cfg.Service == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the scheduler")
	}
	run, err := s.cfg.Service.Store().GetRun(r.Context(), r.PathValue("dag"), r.PathValue("run"))
	if errors.Is(err, scheduler.ErrNotFound) {
		return nil, http.StatusNotFound, fmt.Errorf("run %q: not found", r.PathValue("run"))
	}
	if err != nil {
		return nil, 0, err
	}
	tis, err := s.cfg.Service.TaskInstances(r.Context(), run.DagID, run.RunID)
	if err != nil {
		return nil, 0, err
	}
	p := runPage{Run: run, Tasks: tis, Gantt: newGantt(tis, time.Now()), Tries: []ganttRow{},
		Messages: s.runMessages(run.RunID), Users: s.runUsers(run.RunID)}
	if p.Gantt != nil {
		p.Tries = p.Gantt.Rows
	}
	return p, 0, nil
}

type logPage struct {
	DagID, RunID, TaskID string
	Try                  int
	Tries                []int
	Text                 string `json:"content"`
}

func (s *Server) loadLog(r *http.Request) (any, int, error) {
	if s.cfg.Service == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the scheduler")
	}
	try, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || try < 1 {
		return nil, http.StatusBadRequest, fmt.Errorf("try %q is not a try number", r.PathValue("try"))
	}
	p := logPage{DagID: r.PathValue("dag"), RunID: r.PathValue("run"), TaskID: r.PathValue("task"), Try: try}
	text, err := s.cfg.Service.Store().GetLog(r.Context(), p.DagID, p.RunID, p.TaskID, try)
	if errors.Is(err, scheduler.ErrNotFound) {
		return nil, http.StatusNotFound, fmt.Errorf("no try %d of %s in %s", try, p.TaskID, p.RunID)
	}
	if err != nil {
		return nil, 0, err
	}
	p.Text = text
	tries, err := s.cfg.Service.Store().ListTries(r.Context(), p.DagID, p.RunID)
	if err != nil {
		return nil, 0, err
	}
	for _, t := range tries {
		if t.TaskID == p.TaskID {
			p.Tries = append(p.Tries, t.TryNumber)
		}
	}
	return p, 0, nil
}

// back redirects to where a form came from, with a message.
func back(w http.ResponseWriter, r *http.Request, to, flash string) {
	u := to + "?flash=" + url.QueryEscape(flash)
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (s *Server) serviceOr503(w http.ResponseWriter) bool {
	if s.cfg.Service == nil {
		http.Error(w, "the scheduler is not connected to this UI", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func (s *Server) opError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, scheduler.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, scheduler.ErrInvalid), errors.Is(err, scheduler.ErrExists):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		s.log.Error("web: operation", "err", err)
		http.Error(w, "the metadata store failed; see the server's log", http.StatusInternalServerError)
	}
}

func (s *Server) pauseDAG(w http.ResponseWriter, r *http.Request) {
	if !s.serviceOr503(w) {
		return
	}
	paused := r.PostFormValue("paused") == "true"
	if _, err := s.cfg.Service.SetPaused(r.Context(), r.PathValue("dag"), paused); err != nil {
		s.opError(w, err)
		return
	}
	word := "unpaused"
	if paused {
		word = "paused"
	}
	back(w, r, safeNext(r.PostFormValue("back")), r.PathValue("dag")+" "+word)
}

func (s *Server) triggerDAG(w http.ResponseWriter, r *http.Request) {
	if !s.serviceOr503(w) {
		return
	}
	var conf map[string]any
	if c := strings.TrimSpace(r.PostFormValue("conf")); c != "" {
		if err := json.Unmarshal([]byte(c), &conf); err != nil {
			http.Error(w, "conf: not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	run, err := s.cfg.Service.Trigger(r.Context(), r.PathValue("dag"), conf, time.Time{}, "")
	if err != nil {
		s.opError(w, err)
		return
	}
	back(w, r, "/dags/"+pathEscape(run.DagID), "triggered "+run.RunID)
}

func (s *Server) clearRun(w http.ResponseWriter, r *http.Request) {
	if !s.serviceOr503(w) {
		return
	}
	run, err := s.cfg.Service.Clear(r.Context(), r.PathValue("dag"), r.PathValue("run"))
	if err != nil {
		s.opError(w, err)
		return
	}
	back(w, r, "/dags/"+pathEscape(run.DagID)+"/runs/"+pathEscape(run.RunID), "cleared: queued again")
}

func (s *Server) markRun(w http.ResponseWriter, r *http.Request) {
	if !s.serviceOr503(w) {
		return
	}
	run, err := s.cfg.Service.Mark(r.Context(), r.PathValue("dag"), r.PathValue("run"), scheduler.RunState(r.PostFormValue("state")))
	if err != nil {
		s.opError(w, err)
		return
	}
	back(w, r, "/dags/"+pathEscape(run.DagID)+"/runs/"+pathEscape(run.RunID), "marked "+string(run.State))
}

// ---- users ----

type usersPage struct {
	Query  sink.PageQuery `json:"query"`
	Users  []user.Record  `json:"users"`
	Next   string         `json:"next"`
	Stats  sink.Stats     `json:"stats"`
	Nats   []string       `json:"-"`
	NextQS string         `json:"-"`
	// Run is the DAG run of the run filter, when the scheduler has it.
	Run *scheduler.Run `json:"run,omitempty"`
}

func (s *Server) loadUsers(r *http.Request) (any, int, error) {
	if s.cfg.Users == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the sink")
	}
	q := r.URL.Query()
	pq := sink.PageQuery{Limit: 50, After: q.Get("after"), Search: q.Get("q"), Nat: q.Get("nat"), Run: q.Get("run")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return nil, http.StatusBadRequest, fmt.Errorf("limit %q: give 1 to 500", v)
		}
		pq.Limit = n
	}
	page, err := s.cfg.Users.Page(r.Context(), pq)
	if err != nil {
		if errors.Is(err, sink.ErrBadCursor) || errors.Is(err, sink.ErrBadQuery) || errors.Is(err, user.ErrInvalid) {
			return nil, http.StatusBadRequest, err
		}
		return nil, http.StatusBadGateway, fmt.Errorf("sink: %w", err)
	}
	stats, err := s.cfg.Users.Stats(r.Context())
	if err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("sink: %w", err)
	}
	p := usersPage{Query: pq, Users: page.Users, Next: page.Next, Stats: stats, Nats: sortedKeys(stats.ByNat)}
	if pq.Run != "" {
		p.Run, _ = s.findRun(r, pq.Run)
	}
	if p.Users == nil {
		p.Users = []user.Record{}
	}
	if page.Next != "" {
		v := url.Values{"after": {page.Next}}
		if pq.Search != "" {
			v.Set("q", pq.Search)
		}
		if pq.Nat != "" {
			v.Set("nat", pq.Nat)
		}
		if pq.Run != "" {
			v.Set("run", pq.Run)
		}
		p.NextQS = v.Encode()
	}
	return p, 0, nil
}
