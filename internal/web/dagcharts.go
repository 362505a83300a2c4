package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

// The DAG pages' pictures, as Airflow draws them: the durations of a DAG's
// last runs (a chart, drawn by static/dagcharts.js with uPlot from the
// table beside it) and a Gantt of a run's task tries (inline SVG, drawn
// here, so it shows without JavaScript too).

// Runs of the durations chart: the last dagChartRuns unless ?runs= says,
// at most dagChartMax.
const (
	dagChartRuns = 50
	dagChartMax  = 500
)

// runDuration is one run of the durations chart.
type runDuration struct {
	RunID       string             `json:"dag_run_id"`
	State       scheduler.RunState `json:"state"`
	LogicalDate time.Time          `json:"logical_date"`
	StartDate   time.Time          `json:"start_date"`
	EndDate     time.Time          `json:"end_date"`
	// Seconds is how long the run took (so far, while it runs); null when
	// it has not started.
	Seconds *float64 `json:"duration_s"`
}

// runsParam reads ?runs= (how many runs the chart shows).
func runsParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("runs")
	if v == "" {
		return dagChartRuns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > dagChartMax {
		return 0, fmt.Errorf("runs %q: give 1 to %d", v, dagChartMax)
	}
	return n, nil
}

// runDurations are the durations of runs (newest first, as ListRuns gives
// them), oldest first, as the chart draws them.
func runDurations(runs []scheduler.Run, now time.Time) []runDuration {
	out := make([]runDuration, 0, len(runs))
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		d := runDuration{RunID: r.RunID, State: r.State, LogicalDate: r.LogicalDate, StartDate: r.StartDate, EndDate: r.EndDate}
		if !r.StartDate.IsZero() {
			end := r.EndDate
			if end.IsZero() {
				end = now
			}
			s := max(end.Sub(r.StartDate).Seconds(), 0)
			d.Seconds = &s
		}
		out = append(out, d)
	}
	return out
}

// Took shows a run's duration as the grid and the table do ("" when it has
// not started).
func (d runDuration) Took() string {
	if d.Seconds == nil {
		return ""
	}
	return tookString(time.Duration(*d.Seconds * float64(time.Second)))
}

// tookString rounds a duration for reading: milliseconds under a minute,
// seconds above.
func tookString(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// Gantt geometry, in the SVG's user units: a label column, then the bars.
const (
	ganttLabel = 200
	ganttWidth = 1000
	ganttStep  = 24
	ganttTop   = 22 // the time axis
	ganttRight = 40 // room for the last tick's label
)

// gantt is a run's tries on one time axis: a row a try, oldest task
// first, each try's queued part (from due to start) and running part
// (from start to end, or to now while it runs).
type gantt struct {
	From, To time.Time
	Rows     []ganttRow
	Ticks    []ganttTick
	Height   int
}

// ganttRow is one try: its times, as data (the table beside the chart,
// the JSON) and as x positions in the SVG.
type ganttRow struct {
	TaskID    string              `json:"task_id"`
	Try       int                 `json:"try_number"`
	State     scheduler.TaskState `json:"state"`
	QueuedAt  time.Time           `json:"queued_at"`
	StartDate time.Time           `json:"start_date"`
	EndDate   time.Time           `json:"end_date"`
	Hostname  string              `json:"hostname"`
	// Waited is from due to start; Ran from start to end (or now).
	Waited time.Duration `json:"-"`
	Ran    time.Duration `json:"-"`

	Y                    int     `json:"-"`
	QueuedX, QueuedW     float64 `json:"-"`
	RunX, RunW           float64 `json:"-"`
	Running, HasQueued   bool    `json:"-"`
	DagID, RunID, LogURL string  `json:"-"`
}

// ganttTick is a mark of the time axis: its x and its offset from the
// run's first time.
type ganttTick struct {
	X     float64
	Label string
}

// newGantt lays out the tries of a run's task instances, in the order
// they started. A try not started yet has no bar; one running runs to now. nil
// when no try has started.
func newGantt(tis []scheduler.TaskInstance, now time.Time) *gantt {
	g := &gantt{}
	for _, ti := range tis {
		for _, t := range ti.Tries {
			row := ganttRow{TaskID: t.TaskID, Try: t.TryNumber, State: t.State, QueuedAt: t.QueuedAt,
				StartDate: t.StartDate, EndDate: t.EndDate, Hostname: t.Hostname, DagID: t.DagID, RunID: t.RunID,
				LogURL: "/dags/" + pathEscape(t.DagID) + "/runs/" + pathEscape(t.RunID) + "/tasks/" + pathEscape(t.TaskID) + "/logs/" + strconv.Itoa(t.TryNumber)}
			if t.StartDate.IsZero() {
				continue
			}
			end := t.EndDate
			if end.IsZero() {
				end, row.Running = now, true
			}
			first := t.StartDate
			if !t.QueuedAt.IsZero() && t.QueuedAt.Before(t.StartDate) {
				first, row.HasQueued = t.QueuedAt, true
				row.Waited = t.StartDate.Sub(t.QueuedAt)
			}
			row.Ran = max(end.Sub(t.StartDate), 0)
			if g.From.IsZero() || first.Before(g.From) {
				g.From = first
			}
			if end.After(g.To) {
				g.To = end
			}
			g.Rows = append(g.Rows, row)
		}
	}
	if len(g.Rows) == 0 {
		return nil
	}
	// In the order they started, as Airflow's Gantt: a retry below the try
	// it follows.
	slices.SortStableFunc(g.Rows, func(a, b ganttRow) int { return a.StartDate.Compare(b.StartDate) })
	span := g.To.Sub(g.From)
	if span <= 0 {
		span = time.Millisecond
	}
	x := func(t time.Time) float64 {
		return ganttLabel + float64(ganttWidth-ganttLabel-ganttRight)*float64(t.Sub(g.From))/float64(span)
	}
	for i := range g.Rows {
		row := &g.Rows[i]
		row.Y = ganttTop + i*ganttStep
		end := row.StartDate.Add(row.Ran)
		if row.HasQueued {
			row.QueuedX, row.QueuedW = x(row.QueuedAt), x(row.StartDate)-x(row.QueuedAt)
		}
		// At least a pixel and a half wide, so a try of a millisecond shows.
		row.RunX, row.RunW = x(row.StartDate), max(x(end)-x(row.StartDate), 1.5)
	}
	for i := 0; i <= 4; i++ {
		at := g.From.Add(span * time.Duration(i) / 4)
		label := "+" + tookString(at.Sub(g.From))
		if i == 0 {
			label = at.UTC().Format("15:04:05")
		}
		g.Ticks = append(g.Ticks, ganttTick{X: x(at), Label: label})
	}
	g.Height = ganttTop + len(g.Rows)*ganttStep + 4
	return g
}
