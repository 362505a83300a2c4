package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
)

// seededRun is a finished run written into the metadata store as the
// scheduler would have left it: its tries, a retry among them.
type seededRun struct {
	RunID string
	State scheduler.RunState
	Took  time.Duration
}

// seedRuns writes n finished runs of user_automation (every third
// failed), a day before now and an hour apart, each with three tasks'
// tries: extract (queued 2 s, then 1 s), fetch_and_produce (a first try
// that fails after 2 s, a retry 3 s later that ends the run) and load
// (after fetch). The scheduler leaves finished runs alone.
func seedRuns(t testing.TB, st scheduler.Store, n int) []seededRun {
	t.Helper()
	ctx := context.Background()
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Hour)
	var out []seededRun
	for i := range n {
		at := base.Add(time.Duration(i) * time.Hour)
		state, last := scheduler.RunSuccess, scheduler.TaskSuccess
		if i%3 == 2 {
			state, last = scheduler.RunFailed, scheduler.TaskFailed
		}
		start := at.Add(time.Minute)
		slow := time.Duration(i%4) * time.Second // durations differ run to run
		fetch1 := start.Add(3 * time.Second)
		fetch2 := fetch1.Add(5 * time.Second)
		load := fetch2.Add(4*time.Second + slow)
		end := load.Add(time.Second)
		r := scheduler.Run{DagID: ingestdag.UserAutomationID, RunID: fmt.Sprintf("seeded__%02d", i), RunType: scheduler.RunScheduled,
			LogicalDate: at, DataIntervalStart: at.Add(-time.Hour), DataIntervalEnd: at, State: state,
			QueuedAt: start, StartDate: start, EndDate: end}
		if err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		tries := []scheduler.Try{
			{TaskID: "extract", TryNumber: 1, MaxTries: 3, State: scheduler.TaskSuccess, QueuedAt: start, StartDate: start.Add(2 * time.Second), EndDate: fetch1},
			{TaskID: ingestdag.UserAutomationTask, TryNumber: 1, MaxTries: 3, State: scheduler.TaskFailed, QueuedAt: fetch1, StartDate: fetch1, EndDate: fetch1.Add(2 * time.Second), Error: "randomuser: 503"},
			{TaskID: ingestdag.UserAutomationTask, TryNumber: 2, MaxTries: 3, State: scheduler.TaskSuccess, QueuedAt: fetch1.Add(2 * time.Second), StartDate: fetch2, EndDate: load},
			{TaskID: "load", TryNumber: 1, MaxTries: 3, State: last, QueuedAt: load, StartDate: load, EndDate: end},
		}
		for _, tr := range tries {
			tr.DagID, tr.RunID, tr.Hostname = r.DagID, r.RunID, "worker-1"
			if err := st.PutTry(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, seededRun{RunID: r.RunID, State: state, Took: end.Sub(start)})
	}
	return out
}

// TestDAGPictures: the DAG page's run durations (the JSON, the table
// beside the chart, ?runs=), the grid's durations on hover, and the run
// page's Gantt of its tries, a retry on its own row, each bar where its
// times put it.
func TestDAGPictures(t *testing.T) {
	f := newFixture(t)
	runs := seedRuns(t, f.meta, 7)
	c := f.loggedIn(t, login.ViewerUser, viewerPassword)

	var dag struct {
		Durations []struct {
			RunID   string   `json:"dag_run_id"`
			State   string   `json:"state"`
			Seconds *float64 `json:"duration_s"`
		} `json:"durations"`
		Runs []struct {
			Run struct {
				RunID string `json:"dag_run_id"`
			} `json:"run"`
			Took map[string]string `json:"took"`
		} `json:"runs"`
	}
	if st := c.getJSON("/api/ui/dags/user_automation", &dag); st != http.StatusOK {
		t.Fatalf("DAG twin: %d", st)
	}
	if len(dag.Durations) != len(runs) {
		t.Fatalf("durations of %d runs, want %d: %+v", len(dag.Durations), len(runs), dag.Durations)
	}
	for i, d := range dag.Durations { // oldest first
		want := runs[i]
		if d.RunID != want.RunID || d.State != string(want.State) || d.Seconds == nil || *d.Seconds != want.Took.Seconds() {
			t.Errorf("duration %d: %s %s %v, want %s %s %v s", i, d.RunID, d.State, d.Seconds, want.RunID, want.State, want.Took.Seconds())
		}
	}
	var few struct {
		Durations []struct {
			RunID string `json:"dag_run_id"`
		} `json:"durations"`
	}
	c.getJSON("/api/ui/dags/user_automation?runs=2", &few)
	if len(few.Durations) != 2 || few.Durations[1].RunID != runs[len(runs)-1].RunID {
		t.Errorf("?runs=2: %+v, want the last two runs", few.Durations)
	}
	if st := c.getJSON("/api/ui/dags/user_automation?runs=0", nil); st != http.StatusBadRequest {
		t.Errorf("?runs=0: %d, want 400", st)
	}
	// The grid: the latest try's duration in each cell's title.
	last := dag.Runs[len(dag.Runs)-1]
	if last.Took[ingestdag.UserAutomationTask] == "" || last.Took["load"] != "1s" {
		t.Errorf("grid durations of %s: %v", last.Run.RunID, last.Took)
	}
	page := c.get("/dags/user_automation")
	if !strings.Contains(page.body, `title="load: success, 1s"`) {
		t.Errorf("the grid has no duration on hover: %.3000s", page.body)
	}
	// The chart's table: a row a run, with what the chart draws.
	rows := regexp.MustCompile(`<tr data-at="(\d+)" data-state="(\w+)" data-s="([\d.]+)">`).FindAllStringSubmatch(page.body, -1)
	if len(rows) != len(runs) {
		t.Fatalf("the durations table has %d rows, want %d", len(rows), len(runs))
	}
	for i, r := range rows {
		if s, _ := strconv.ParseFloat(r[3], 64); r[2] != string(runs[i].State) || s != runs[i].Took.Seconds() {
			t.Errorf("table row %d: %v, want %s %v", i, r[1:], runs[i].State, runs[i].Took)
		}
	}

	// The Gantt of a run: four tries on four rows, the retry after the
	// failed try, each bar at its times.
	run := runs[1]
	var rp struct {
		Gantt []struct {
			TaskID string              `json:"task_id"`
			Try    int                 `json:"try_number"`
			State  scheduler.TaskState `json:"state"`
			Start  time.Time           `json:"start_date"`
			End    time.Time           `json:"end_date"`
		} `json:"gantt"`
		Users string `json:"users"`
	}
	c.getJSON("/api/ui/dags/user_automation/runs/"+url.PathEscape(run.RunID), &rp)
	if len(rp.Gantt) != 4 {
		t.Fatalf("gantt: %d tries, want 4: %+v", len(rp.Gantt), rp.Gantt)
	}
	var fetch []int
	for i, g := range rp.Gantt {
		if g.TaskID == ingestdag.UserAutomationTask {
			fetch = append(fetch, i)
		}
	}
	if len(fetch) != 2 || rp.Gantt[fetch[0]].Try != 1 || rp.Gantt[fetch[0]].State != scheduler.TaskFailed ||
		rp.Gantt[fetch[1]].Try != 2 || !rp.Gantt[fetch[1]].Start.After(rp.Gantt[fetch[0]].End) {
		t.Errorf("the retry is not visible: %+v", rp.Gantt)
	}
	gp := c.get("/dags/user_automation/runs/" + url.PathEscape(run.RunID))
	bars := regexp.MustCompile(`<g class="try st-(\w+)" data-task="([\w_]+)" data-try="(\d)">\s*<text[^>]*>[^<]*</text>\s*(?:<rect class="queued" x="([\d.]+)"[^>]*width="([\d.]+)"[^>]*><title>[^<]*</title></rect>)?\s*<rect class="ran" x="([\d.]+)"[^>]*width="([\d.]+)"`).FindAllStringSubmatch(gp.body, -1)
	if len(bars) != 4 {
		t.Fatalf("the Gantt has %d bars, want 4: %.4000s", len(bars), gp.body)
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	// The run spans 13 s plus its slow part; the axis is 760 units wide
	// from x=200. extract waited 2 s, so its queued bar starts the axis.
	span := run.Took.Seconds()
	unit := 760 / span
	for _, b := range bars {
		if b[2] == "extract" {
			if b[4] == "" || num(b[4]) != 200 || abs(num(b[5])-2*unit) > 0.01 || abs(num(b[6])-(200+2*unit)) > 0.01 {
				t.Errorf("extract's bars: queued at %s width %s, ran at %s; want 200, %.2f, %.2f", b[4], b[5], b[6], 2*unit, 200+2*unit)
			}
		}
		if b[2] == ingestdag.UserAutomationTask && b[3] == "2" && num(b[6]) <= num(bars[fetch[0]][6])+num(bars[fetch[0]][7]) {
			t.Errorf("the retry's bar starts at %s, not after the failed try's end", b[6])
		}
		if b[2] == "load" && abs(num(b[6])+num(b[7])-960) > 0.01 {
			t.Errorf("load, the last try, ends at %.2f, want the axis' end 960", num(b[6])+num(b[7]))
		}
	}
	if !strings.Contains(gp.body, `<table class="numbers"><caption>tries</caption>`) {
		t.Error("the Gantt has no table beside it")
	}
	if rp.Users != "/users?run="+url.QueryEscape(run.RunID) || !strings.Contains(gp.body, `id="run-users" href="/users?run=`+url.QueryEscape(run.RunID)+`"`) {
		t.Errorf("the run links to %q for its users", rp.Users)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
