package storetest

// The run cases: create and get, unique slots, filters, orders and pages,
// updates, claims and deletes.

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

// fullRun is a run with every field set, times in another zone and finer
// than a microsecond.
func fullRun() scheduler.Run {
	zone := time.FixedZone("UTC-5", -5*3600)
	ld := time.Date(2026, 3, 2, 19, 0, 0, 0, zone)
	return scheduler.Run{
		DagID: "user_automation", RunID: "manual__2026-03-03T00:00:00+00:00", RunType: scheduler.RunManual,
		LogicalDate: ld, DataIntervalStart: ld.Add(-24 * time.Hour), DataIntervalEnd: ld,
		State: scheduler.RunRunning, Conf: map[string]any{"users": float64(25), "seed": "abc"},
		ExternalTrigger: true, QueuedAt: ld.Add(1500 * time.Nanosecond),
		StartDate: ld.Add(time.Second + 999999*time.Nanosecond), EndDate: ld.Add(time.Minute + 1),
		Note: "triggered by hand — ünïcode",
	}
}

func testCreateGetRun(t *testing.T, h *harness) {
	r := h.createRun(fullRun())
	wantSame(t, "GetRun", h.getRun(r.DagID, r.RunID), r)
	runs, total := h.listRuns(scheduler.RunFilter{})
	if total != 1 || len(runs) != 1 {
		t.Fatalf("ListRuns = %d runs, total %d; want 1, 1", len(runs), total)
	}
	wantSame(t, "ListRuns' run", runs[0], r)
}

func testDuplicateRun(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))

	sameID := newRun("a", 5)
	sameID.RunID = r.RunID
	wantIs(t, h.CreateRun(t.Context(), sameID), scheduler.ErrExists, "CreateRun(taken run_id)")

	sameSlot := newRun("a", 0)
	sameSlot.RunID = "manual__other"
	sameSlot.RunType = scheduler.RunManual
	wantIs(t, h.CreateRun(t.Context(), sameSlot), scheduler.ErrExists, "CreateRun(taken logical_date)")

	// A slot is per DAG: the same ids in another DAG are free.
	h.createRun(newRun("b", 0))
	wantSame(t, "the first run after the refused ones", h.getRun("a", r.RunID), r)
	if _, total := h.listRuns(scheduler.RunFilter{}); total != 2 {
		t.Errorf("ListRuns total = %d, want 2 (the refused runs must not be stored)", total)
	}
}

func testNoLogicalDate(t *testing.T, h *harness) {
	for _, id := range []string{"manual__1", "manual__2"} {
		r := newRun("a", 0)
		r.RunID, r.LogicalDate, r.RunType = id, time.Time{}, scheduler.RunManual
		h.createRun(r)
		if got := h.getRun("a", id); !got.LogicalDate.IsZero() {
			t.Errorf("GetRun(%s).LogicalDate = %v, want zero", id, got.LogicalDate)
		}
	}
	h.createRun(newRun("a", 0)) // and the slot itself is still free
}

func testConcurrentSlot(t *testing.T, h *harness) {
	for round, sameRunID := range []bool{true, false} {
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				r := newRun("a", round)
				if !sameRunID {
					r.RunID = fmt.Sprintf("scheduler_%d__%s", i, r.RunID)
				}
				<-start
				errs[i] = h.CreateRun(t.Context(), r)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, scheduler.ErrExists):
				t.Errorf("round %d, creator %d: %v, want nil or an error matching ErrExists", round, i, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d (same run_id: %t): %d of %d creates of one slot succeeded, want exactly 1", round, sameRunID, won, n)
		}
	}
	if _, total := h.listRuns(scheduler.RunFilter{}); total != 2 {
		t.Errorf("ListRuns total = %d, want 2 (one a round)", total)
	}
}

func testGetRunMiss(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	_, err := h.GetRun(t.Context(), "a", "nope")
	wantIs(t, err, scheduler.ErrNotFound, "GetRun(unknown run)")
	_, err = h.GetRun(t.Context(), "b", r.RunID)
	wantIs(t, err, scheduler.ErrNotFound, "GetRun(run id of another DAG)")
}

// listFixture stores runs of two DAGs: a has days 0-5 with varied states
// and run types, b has days 0-2.
func listFixture(h *harness) {
	states := []scheduler.RunState{scheduler.RunSuccess, scheduler.RunFailed, scheduler.RunSuccess, scheduler.RunRunning, scheduler.RunQueued, scheduler.RunSuccess}
	for i, st := range states {
		r := newRun("a", i)
		r.State = st
		if i == 3 {
			r.RunType, r.RunID = scheduler.RunManual, "manual__"+r.LogicalDate.Format(time.RFC3339)
		}
		if i == 4 {
			r.RunType, r.RunID = scheduler.RunBackfill, "backfill__"+r.LogicalDate.Format(time.RFC3339)
		}
		h.createRun(r)
	}
	for i := range 3 {
		r := newRun("b", i)
		r.State = scheduler.RunSuccess
		h.createRun(r)
	}
}

func testListRunsFilters(t *testing.T, h *harness) {
	listFixture(h)
	ld := func(i int) string { return day(i).Format(time.RFC3339) }
	cases := []struct {
		name string
		f    scheduler.RunFilter
		want []string // in the default order, -logical_date
	}{
		{"one DAG", scheduler.RunFilter{DagID: "b"},
			[]string{"b/scheduled__" + ld(2), "b/scheduled__" + ld(1), "b/scheduled__" + ld(0)}},
		{"states", scheduler.RunFilter{DagID: "a", States: []scheduler.RunState{scheduler.RunFailed, scheduler.RunRunning}},
			[]string{"a/manual__" + ld(3), "a/scheduled__" + ld(1)}},
		{"run types", scheduler.RunFilter{RunTypes: []scheduler.RunType{scheduler.RunManual, scheduler.RunBackfill}},
			[]string{"a/backfill__" + ld(4), "a/manual__" + ld(3)}},
		{"logical date range, inclusive", scheduler.RunFilter{DagID: "a", LogicalDateGTE: day(2), LogicalDateLTE: day(4)},
			[]string{"a/backfill__" + ld(4), "a/manual__" + ld(3), "a/scheduled__" + ld(2)}},
		{"from a date", scheduler.RunFilter{LogicalDateGTE: day(2)},
			[]string{"a/scheduled__" + ld(5), "a/backfill__" + ld(4), "a/manual__" + ld(3), "a/scheduled__" + ld(2), "b/scheduled__" + ld(2)}},
		{"up to a date, in another zone", scheduler.RunFilter{LogicalDateLTE: day(1).In(time.FixedZone("UTC+9", 9*3600))},
			[]string{"a/scheduled__" + ld(1), "b/scheduled__" + ld(1), "a/scheduled__" + ld(0), "b/scheduled__" + ld(0)}},
		{"all filters", scheduler.RunFilter{DagID: "a", States: []scheduler.RunState{scheduler.RunSuccess},
			RunTypes: []scheduler.RunType{scheduler.RunScheduled}, LogicalDateGTE: day(1), LogicalDateLTE: day(5)},
			[]string{"a/scheduled__" + ld(5), "a/scheduled__" + ld(2)}},
		{"nothing matches", scheduler.RunFilter{DagID: "a", States: []scheduler.RunState{"no such state"}}, []string{}},
		{"unknown DAG", scheduler.RunFilter{DagID: "nope"}, []string{}},
	}
	for _, c := range cases {
		runs, total := h.listRuns(c.f)
		if got := runIDs(runs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: ListRuns = %q, want %q", c.name, got, c.want)
		}
		if total != len(c.want) {
			t.Errorf("%s: total = %d, want %d", c.name, total, len(c.want))
		}
	}
	for _, all := range []string{"", "~"} {
		if _, total := h.listRuns(scheduler.RunFilter{DagID: all}); total != 9 {
			t.Errorf("ListRuns(DagID %q) total = %d, want 9 (every DAG)", all, total)
		}
	}
}

func testListRunsOrder(t *testing.T, h *harness) {
	// Three runs of a, two of b; start and end dates in another order than
	// the logical dates, one run not started (NULL start and end).
	mk := func(dag string, i int, state scheduler.RunState, start int) {
		r := newRun(dag, i)
		r.State = state
		if start >= 0 {
			r.StartDate = base.Add(time.Duration(start) * time.Hour)
			r.EndDate = r.StartDate.Add(time.Duration(10-start) * time.Minute)
		}
		h.createRun(r)
	}
	mk("a", 0, scheduler.RunSuccess, 5)
	mk("a", 1, scheduler.RunFailed, 3)
	mk("a", 2, scheduler.RunQueued, -1)
	mk("b", 0, scheduler.RunSuccess, 3) // ties a/1 on start_date: dag_id breaks it
	mk("b", 1, scheduler.RunRunning, 1)
	id := func(dag string, i int) string { return dag + "/scheduled__" + day(i).Format(time.RFC3339) }
	cases := []struct {
		order string
		want  []string
	}{
		{"", []string{id("a", 2), id("a", 1), id("b", 1), id("a", 0), id("b", 0)}},
		{"-logical_date", []string{id("a", 2), id("a", 1), id("b", 1), id("a", 0), id("b", 0)}},
		{"logical_date", []string{id("a", 0), id("b", 0), id("a", 1), id("b", 1), id("a", 2)}},
		{"start_date", []string{id("b", 1), id("a", 1), id("b", 0), id("a", 0), id("a", 2)}},
		{"-start_date", []string{id("a", 0), id("a", 1), id("b", 0), id("b", 1), id("a", 2)}},
		{"end_date", []string{id("b", 1), id("a", 1), id("b", 0), id("a", 0), id("a", 2)}},
		{"-end_date", []string{id("a", 0), id("a", 1), id("b", 0), id("b", 1), id("a", 2)}},
		{"state", []string{id("a", 1), id("a", 2), id("b", 1), id("a", 0), id("b", 0)}},
		{"run_id", []string{id("a", 0), id("b", 0), id("a", 1), id("b", 1), id("a", 2)}},
		{"-run_id", []string{id("a", 2), id("a", 1), id("b", 1), id("a", 0), id("b", 0)}},
	}
	for _, c := range cases {
		runs, _ := h.listRuns(scheduler.RunFilter{OrderBy: c.order})
		if got := runIDs(runs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ListRuns(OrderBy %q) = %q, want %q", c.order, got, c.want)
		}
	}
	for _, bad := range []string{"conf", "logical_date; DROP TABLE dag_run", "--logical_date", "-"} {
		_, _, err := h.ListRuns(t.Context(), scheduler.RunFilter{OrderBy: bad})
		if err == nil {
			t.Errorf("ListRuns(OrderBy %q) succeeded, want an error", bad)
		}
	}
}

func testListRunsPage(t *testing.T, h *harness) {
	for i := range 10 {
		h.createRun(newRun("a", i))
	}
	cases := []struct {
		limit, offset int
		first, n      int // day of the first run (order logical_date), how many
	}{
		{3, 0, 0, 3}, {3, 3, 3, 3}, {3, 9, 9, 1}, {3, 10, 0, 0}, {0, 4, 4, 6}, {0, 0, 0, 10}, {100, 0, 0, 10},
	}
	for _, c := range cases {
		runs, total := h.listRuns(scheduler.RunFilter{OrderBy: "logical_date", Limit: c.limit, Offset: c.offset})
		if total != 10 {
			t.Errorf("limit %d offset %d: total = %d, want 10", c.limit, c.offset, total)
		}
		if len(runs) != c.n {
			t.Errorf("limit %d offset %d: %d runs, want %d", c.limit, c.offset, len(runs), c.n)
			continue
		}
		if c.n > 0 && !runs[0].LogicalDate.Equal(day(c.first)) {
			t.Errorf("limit %d offset %d: first run is of %v, want %v", c.limit, c.offset, runs[0].LogicalDate, day(c.first))
		}
	}
	for _, f := range []scheduler.RunFilter{{Limit: -1}, {Offset: -1}} {
		if _, _, err := h.ListRuns(t.Context(), f); err == nil {
			t.Errorf("ListRuns(limit %d, offset %d) succeeded, want an error", f.Limit, f.Offset)
		}
	}
}

func testUpdateRun(t *testing.T, h *harness) {
	r := h.createRun(fullRun())
	other := h.createRun(newRun("user_automation", 9))
	u := r
	u.State = scheduler.RunSuccess
	u.StartDate = base.Add(time.Hour + 7*time.Nanosecond)
	u.EndDate = base.Add(2 * time.Hour)
	u.Note = "done \x00"
	u.Conf = map[string]any{"changed": true}
	// Fields UpdateRun does not replace: changing them here must not count.
	u.RunType, u.LogicalDate, u.QueuedAt, u.ExternalTrigger = scheduler.RunBackfill, day(20), day(21), false
	u.DataIntervalStart, u.DataIntervalEnd = day(20), day(21)
	if err := h.UpdateRun(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	want := r
	want.State, want.StartDate, want.EndDate, want.Note, want.Conf = u.State, u.StartDate, u.EndDate, "done \uFFFD", u.Conf
	wantSame(t, "GetRun after UpdateRun", h.getRun(r.DagID, r.RunID), want)
	wantSame(t, "the other run after UpdateRun", h.getRun(other.DagID, other.RunID), other)

	// Zero times clear, nil conf clears.
	u.StartDate, u.EndDate, u.Conf = time.Time{}, time.Time{}, nil
	if err := h.UpdateRun(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	want.StartDate, want.EndDate, want.Conf = time.Time{}, time.Time{}, nil
	wantSame(t, "GetRun after clearing", h.getRun(r.DagID, r.RunID), want)

	missing := newRun("user_automation", 30)
	wantIs(t, h.UpdateRun(t.Context(), missing), scheduler.ErrNotFound, "UpdateRun(unknown run)")
}

func testClaimRun(t *testing.T, h *harness) {
	r := h.createRun(newRun("user_automation", 40))
	running := r
	running.State, running.StartDate = scheduler.RunRunning, base.Add(time.Minute)
	if won := winners(t, func() (bool, error) { return h.ClaimRun(t.Context(), scheduler.RunQueued, running) }); won != 1 {
		t.Fatalf("%d claims of one queued run won, want exactly 1", won)
	}
	if got := h.getRun(r.DagID, r.RunID); got.State != scheduler.RunRunning || !got.StartDate.Equal(running.StartDate) {
		t.Fatalf("after the claim the run is %+v", got)
	}
	if ok, err := h.ClaimRun(t.Context(), scheduler.RunQueued, running); ok || err != nil {
		t.Fatalf("claim from queued of a running run = %v, %v; want false, nil", ok, err)
	}
	if ok, _ := h.ClaimRun(t.Context(), scheduler.RunQueued, newRun("user_automation", 41)); ok {
		t.Fatal("claimed a run that does not exist")
	}
}

func testDeleteRun(t *testing.T, h *harness) {
	gone := h.createRun(newRun("a", 0))
	kept := h.createRun(newRun("a", 1))
	goneTries := []scheduler.Try{h.putTry(newTry(gone, "t1", 1)), h.putTry(newTry(gone, "t1", 2)), h.putTry(newTry(gone, "t2", 1))}
	keptTry := h.putTry(newTry(kept, "t1", 1))
	for _, tr := range goneTries {
		h.appendLog(tr, "log of "+tr.TaskID)
	}
	h.appendLog(keptTry, "kept log")

	if err := h.DeleteRun(t.Context(), gone.DagID, gone.RunID); err != nil {
		t.Fatal(err)
	}
	_, err := h.GetRun(t.Context(), gone.DagID, gone.RunID)
	wantIs(t, err, scheduler.ErrNotFound, "GetRun(deleted run)")
	if tries := h.listTries(gone.DagID, gone.RunID); len(tries) != 0 {
		t.Errorf("ListTries(deleted run) = %q, want none", tryKeys(tries))
	}
	for _, tr := range goneTries {
		_, err := h.GetLog(t.Context(), tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber)
		wantIs(t, err, scheduler.ErrNotFound, "GetLog(try of a deleted run)")
	}
	queued, err := h.TriesInState(t.Context(), scheduler.TaskQueued)
	if err != nil {
		t.Fatal(err)
	}
	if got := tryKeys(queued); !reflect.DeepEqual(got, tryKeys([]scheduler.Try{keptTry})) {
		t.Errorf("TriesInState(queued) after DeleteRun = %q, want only the kept run's try", got)
	}
	wantSame(t, "the other run", h.getRun(kept.DagID, kept.RunID), kept)
	if got := h.getLog(keptTry); got != "kept log" {
		t.Errorf("the other run's log = %q, want %q", got, "kept log")
	}

	// A run created again in the same slot starts with nothing of the old.
	h.createRun(gone)
	if tries := h.listTries(gone.DagID, gone.RunID); len(tries) != 0 {
		t.Errorf("ListTries(recreated run) = %q, want none", tryKeys(tries))
	}
	h.putTry(goneTries[0])
	if got := h.getLog(goneTries[0]); got != "" {
		t.Errorf("log of a recreated try = %q, want it empty", got)
	}

	wantIs(t, h.DeleteRun(t.Context(), "a", "nope"), scheduler.ErrNotFound, "DeleteRun(unknown run)")
}
