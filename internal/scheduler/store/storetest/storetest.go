// Package storetest is the conformance suite every scheduler metadata store
// driver runs, shipped beside the drivers as test support.
//
// One set of table-driven cases (DAGs, runs and their unique slots, filters
// and orders, tries, logs, users, time and conf round trips, the River
// queue, use after Close) runs against a fresh, empty store per case.
//
// A driver's test calls Run with a function that opens an empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) scheduler.Store {
//			s, err := mydriver.Open(t.Context(), freshURL(t))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run closes each store when its case ends; open should register with
// t.Cleanup whatever else must go (a schema, a file).
//
// Beyond scheduler.Store's doc comments, the suite pins down what the
// drivers agree on: times are truncated (not rounded) to the microsecond;
// lists order names byte-wise and are empty, not nil, when nothing matches;
// in ListRuns unset times sort last in either direction and ties are broken
// by dag_id then run_id, ascending; runs without a logical date take no slot; a try of
// a missing run, and a log line of a missing try, are ErrNotFound; replacing
// a try keeps its log; TriesInState with no states returns none; NUL bytes
// and invalid UTF-8 in free text (logs, errors, notes, descriptions) come
// back as U+FFFD.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/userstream/userstream/internal/scheduler"
)

// Run runs every case of the contract against stores from open, each case
// as a subtest with a store of its own, which open must return empty.
func Run(t *testing.T, open func(t *testing.T) scheduler.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"sync new dag: paused as the flag says", testSyncNew},
		{"sync known dag: keeps is_paused, takes the rest", testSyncKnown},
		{"set paused is persisted", testSetPaused},
		{"set next dagrun", testSetNextDagRun},
		{"list dags by dag_id", testListDAGs},
		{"get dag miss", testGetDAGMiss},
		{"create then get run", testCreateGetRun},
		{"duplicate run_id or logical date refused", testDuplicateRun},
		{"runs without a logical date take no slot", testNoLogicalDate},
		{"concurrent creates of one slot: one wins", testConcurrentSlot},
		{"get run miss", testGetRunMiss},
		{"list runs filters", testListRunsFilters},
		{"list runs order", testListRunsOrder},
		{"list runs limit and offset", testListRunsPage},
		{"update run", testUpdateRun},
		{"claim run: only from the expected state, one winner", testClaimRun},
		{"claim try: only from the expected state, one winner", testClaimTry},
		{"heartbeats: upserted, listed, a day's silence pruned", testHeartbeat},
		{"delete run removes tries and logs", testDeleteRun},
		{"put try upserts", testPutTry},
		{"list tries order", testListTries},
		{"tries in state", testTriesInState},
		{"append log and get log", testLogs},
		{"users round-trip", testUsers},
		{"times: UTC, microseconds, zero stays zero", testTimes},
		{"conf round-trips as JSON", testConf},
		{"canceled context stores nothing", testCanceled},
		{"queue runs a job", testQueue},
		{"closed store", testClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			h := &harness{Store: s, t: t}
			t.Cleanup(func() {
				if h.closed {
					return
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.run(t, h)
		})
	}
}

// harness is a store with the suite's shorthand around it.
type harness struct {
	scheduler.Store
	t      *testing.T
	closed bool // the case closed the store itself
}

// base is the first logical date of the suite's runs.
var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func day(i int) time.Time { return base.AddDate(0, 0, i) }

// newRun is DAG dag's scheduled run of day i (queued, every time but
// start and end set).
func newRun(dag string, i int) scheduler.Run {
	ld := day(i)
	return scheduler.Run{
		DagID: dag, RunID: "scheduled__" + ld.Format(time.RFC3339), RunType: scheduler.RunScheduled,
		LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: day(i + 1),
		State: scheduler.RunQueued, QueuedAt: day(i + 1).Add(time.Second),
	}
}

func newTry(r scheduler.Run, task string, n int) scheduler.Try {
	return scheduler.Try{
		DagID: r.DagID, RunID: r.RunID, TaskID: task, TryNumber: n, MaxTries: 3,
		State: scheduler.TaskQueued, QueuedAt: r.QueuedAt, JobID: int64(100 + n),
	}
}

func (h *harness) createRun(r scheduler.Run) scheduler.Run {
	h.t.Helper()
	if err := h.CreateRun(h.t.Context(), r); err != nil {
		h.t.Fatalf("CreateRun(%s/%s): %v", r.DagID, r.RunID, err)
	}
	return r
}

func (h *harness) putTry(tr scheduler.Try) scheduler.Try {
	h.t.Helper()
	if err := h.PutTry(h.t.Context(), tr); err != nil {
		h.t.Fatalf("PutTry(%s/%s/%s#%d): %v", tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, err)
	}
	return tr
}

func (h *harness) syncDAG(d scheduler.DAGState, paused bool) scheduler.DAGState {
	h.t.Helper()
	got, err := h.SyncDAG(h.t.Context(), d, paused)
	if err != nil {
		h.t.Fatalf("SyncDAG(%s): %v", d.DagID, err)
	}
	return got
}

func (h *harness) getRun(dag, run string) scheduler.Run {
	h.t.Helper()
	r, err := h.GetRun(h.t.Context(), dag, run)
	if err != nil {
		h.t.Fatalf("GetRun(%s/%s): %v", dag, run, err)
	}
	return r
}

func (h *harness) getDAG(dag string) scheduler.DAGState {
	h.t.Helper()
	d, err := h.GetDAG(h.t.Context(), dag)
	if err != nil {
		h.t.Fatalf("GetDAG(%s): %v", dag, err)
	}
	return d
}

func (h *harness) listRuns(f scheduler.RunFilter) ([]scheduler.Run, int) {
	h.t.Helper()
	runs, total, err := h.ListRuns(h.t.Context(), f)
	if err != nil {
		h.t.Fatalf("ListRuns(%+v): %v", f, err)
	}
	if runs == nil {
		h.t.Errorf("ListRuns(%+v) returned a nil slice, want an empty one", f)
	}
	return runs, total
}

func (h *harness) listTries(dag, run string) []scheduler.Try {
	h.t.Helper()
	tries, err := h.ListTries(h.t.Context(), dag, run)
	if err != nil {
		h.t.Fatalf("ListTries(%s/%s): %v", dag, run, err)
	}
	if tries == nil {
		h.t.Errorf("ListTries(%s/%s) returned a nil slice, want an empty one", dag, run)
	}
	return tries
}

func (h *harness) getLog(tr scheduler.Try) string {
	h.t.Helper()
	text, err := h.GetLog(h.t.Context(), tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber)
	if err != nil {
		h.t.Fatalf("GetLog(%s/%s/%s#%d): %v", tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, err)
	}
	return text
}

func (h *harness) appendLog(tr scheduler.Try, text string) {
	h.t.Helper()
	if err := h.AppendLog(h.t.Context(), tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, text); err != nil {
		h.t.Fatalf("AppendLog(%s/%s/%s#%d): %v", tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, err)
	}
}

// wantIs fails the test unless err matches target.
func wantIs(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one matching %v", what, err, target)
	}
}

// stored is what the store gives back of v (a Run, Try or DAGState): every
// time in UTC, truncated to the microsecond.
func stored[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		if f, ok := rv.Field(i).Interface().(time.Time); ok && !f.IsZero() {
			rv.Field(i).Set(reflect.ValueOf(f.UTC().Truncate(time.Microsecond)))
		}
	}
	return v
}

// diff describes how got differs from want, two structs of one type: times
// must be the same instant, in UTC unless zero; the rest deeply equal.
func diff(got, want any) string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	var b strings.Builder
	for i := range gv.NumField() {
		field := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if gt, ok := g.(time.Time); ok {
			wt := w.(time.Time)
			if !gt.Equal(wt) || gt.IsZero() != wt.IsZero() || (!gt.IsZero() && gt.Location() != time.UTC) {
				fmt.Fprintf(&b, "\n\t%s: got %s (%s), want %s", field, gt.Format(time.RFC3339Nano), gt.Location(), wt.Format(time.RFC3339Nano))
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "\n\t%s: got %#v, want %#v", field, g, w)
		}
	}
	return b.String()
}

func wantSame[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if d := diff(got, stored(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

func runIDs(runs []scheduler.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.DagID + "/" + r.RunID
	}
	return ids
}

func tryKeys(tries []scheduler.Try) []string {
	keys := make([]string, len(tries))
	for i, tr := range tries {
		keys[i] = fmt.Sprintf("%s/%s/%s#%d", tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber)
	}
	return keys
}

func testDAG(id string) scheduler.DAGState {
	return scheduler.DAGState{
		DagID: id, Owner: "airscholar", Description: "fetch users and stream them",
		Schedule: "@daily", Fileloc: "builtin://" + id, LastParsed: base.Add(time.Hour),
		NextDagRun: day(3),
	}
}

func testSyncNew(t *testing.T, h *harness) {
	for _, paused := range []bool{true, false} {
		d := testDAG(fmt.Sprintf("dag_paused_%t", paused))
		d.IsPaused = !paused // the input's is_paused is not what decides
		got := h.syncDAG(d, paused)
		want := d
		want.IsPaused = paused
		wantSame(t, "SyncDAG's result", got, want)
		wantSame(t, "GetDAG after SyncDAG", h.getDAG(d.DagID), want)
	}
}

func testSyncKnown(t *testing.T, h *harness) {
	d := testDAG("user_automation")
	h.syncDAG(d, false)
	if err := h.SetPaused(t.Context(), d.DagID, true); err != nil {
		t.Fatal(err)
	}
	d2 := scheduler.DAGState{
		DagID: d.DagID, Owner: "someone else", Description: "changed \xff", Schedule: "0 * * * *",
		Fileloc: "builtin://moved", LastParsed: base.Add(2 * time.Hour), NextDagRun: day(4),
	}
	got := h.syncDAG(d2, false)
	want := d2
	want.IsPaused, want.Description = true, "changed \uFFFD"
	wantSame(t, "SyncDAG of a known, paused DAG", got, want)
	wantSame(t, "GetDAG after the second SyncDAG", h.getDAG(d.DagID), want)

	// And the other way round: unpaused stays unpaused though pausedIfNew.
	if err := h.SetPaused(t.Context(), d.DagID, false); err != nil {
		t.Fatal(err)
	}
	if got := h.syncDAG(want, true); got.IsPaused {
		t.Error("SyncDAG(known unpaused DAG, pausedIfNew=true) paused it")
	}
	// Zero times in a definition clear the stored ones.
	d3 := scheduler.DAGState{DagID: d.DagID}
	wantSame(t, "SyncDAG with zero fields", h.syncDAG(d3, false), d3)
}

func testSetPaused(t *testing.T, h *harness) {
	h.syncDAG(testDAG("a"), false)
	h.syncDAG(testDAG("b"), false)
	for _, paused := range []bool{true, false, true} {
		if err := h.SetPaused(t.Context(), "a", paused); err != nil {
			t.Fatalf("SetPaused(a, %t): %v", paused, err)
		}
		if got := h.getDAG("a"); got.IsPaused != paused {
			t.Errorf("after SetPaused(a, %t), GetDAG says is_paused=%t", paused, got.IsPaused)
		}
	}
	dags, err := h.ListDAGs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dags) != 2 || !dags[0].IsPaused || dags[1].IsPaused {
		t.Errorf("ListDAGs after pausing a only = %+v", dags)
	}
	wantIs(t, h.SetPaused(t.Context(), "nope", true), scheduler.ErrNotFound, "SetPaused(unknown DAG)")
}

func testSetNextDagRun(t *testing.T, h *harness) {
	h.syncDAG(testDAG("a"), false)
	next := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*3600))
	if err := h.SetNextDagRun(t.Context(), "a", next); err != nil {
		t.Fatal(err)
	}
	want := testDAG("a")
	want.NextDagRun = next
	wantSame(t, "GetDAG after SetNextDagRun", h.getDAG("a"), want)
	if err := h.SetNextDagRun(t.Context(), "a", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := h.getDAG("a"); !got.NextDagRun.IsZero() {
		t.Errorf("after SetNextDagRun(zero), next_dagrun = %v, want zero", got.NextDagRun)
	}
	wantIs(t, h.SetNextDagRun(t.Context(), "nope", next), scheduler.ErrNotFound, "SetNextDagRun(unknown DAG)")
}

func testListDAGs(t *testing.T, h *harness) {
	dags, err := h.ListDAGs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if dags == nil || len(dags) != 0 {
		t.Fatalf("ListDAGs of an empty store = %#v, want an empty, non-nil slice", dags)
	}
	for _, id := range []string{"b", "a_2", "A", "a"} {
		h.syncDAG(testDAG(id), false)
	}
	dags, err = h.ListDAGs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range dags {
		ids = append(ids, d.DagID)
	}
	if want := []string{"A", "a", "a_2", "b"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ListDAGs order = %q, want %q (byte order)", ids, want)
	}
	wantSame(t, "ListDAGs' entry", dags[3], testDAG("b"))
}

func testGetDAGMiss(t *testing.T, h *harness) {
	_, err := h.GetDAG(t.Context(), "nope")
	wantIs(t, err, scheduler.ErrNotFound, "GetDAG(unknown)")
}

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

// MigrationFiles counts a driver's migrations, from its test (the files
// in ./migrations).
func MigrationFiles(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations in ./migrations: %v", err)
	}
	return len(files)
}

// winners runs claim from 8 goroutines at once and counts the wins.
func winners(t *testing.T, claim func() (bool, error)) int {
	const n = 8
	wins := make(chan bool, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := claim()
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	won := 0
	for ok := range wins {
		if ok {
			won++
		}
	}
	return won
}

func testClaimTry(t *testing.T, h *harness) {
	r := h.createRun(newRun("user_automation", 42))
	running := newTry(r, "t1", 1)
	running.State, running.StartDate = scheduler.TaskRunning, base.Add(time.Minute)
	h.putTry(running)
	failed := running
	failed.State, failed.EndDate, failed.Error = scheduler.TaskFailed, base.Add(2*time.Minute), "its scheduler died"
	if won := winners(t, func() (bool, error) { return h.ClaimTry(t.Context(), scheduler.TaskRunning, failed) }); won != 1 {
		t.Fatalf("%d claims of one running try won, want exactly 1", won)
	}
	got := h.listTries(r.DagID, r.RunID)
	if len(got) != 1 || got[0].State != scheduler.TaskFailed || got[0].Error != failed.Error || !got[0].EndDate.Equal(failed.EndDate) {
		t.Fatalf("after the claim the tries are %+v", got)
	}
	if ok, err := h.ClaimTry(t.Context(), scheduler.TaskRunning, failed); ok || err != nil {
		t.Fatalf("claim from running of a failed try = %v, %v; want false, nil", ok, err)
	}
	if ok, _ := h.ClaimTry(t.Context(), scheduler.TaskRunning, newTry(r, "t1", 2)); ok {
		t.Fatal("claimed a try that does not exist")
	}
}

func testHeartbeat(t *testing.T, h *harness) {
	beat := func(j scheduler.SchedulerJob) {
		t.Helper()
		if err := h.Heartbeat(t.Context(), j); err != nil {
			t.Fatalf("Heartbeat(%s): %v", j.ID, err)
		}
	}
	jobs := func() []scheduler.SchedulerJob {
		t.Helper()
		js, err := h.SchedulerJobs(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	old := scheduler.SchedulerJob{ID: "b", Hostname: "h2", StartDate: base, LatestHeartbeat: base}
	beat(old)
	a := scheduler.SchedulerJob{ID: "a", Hostname: "h1", StartDate: base.Add(time.Hour), LatestHeartbeat: base.Add(time.Hour)}
	beat(a)
	a.LatestHeartbeat = base.Add(2 * time.Hour)
	beat(a)
	if got := jobs(); len(got) != 2 || got[0] != a || got[1] != old {
		t.Fatalf("jobs = %+v, want %+v then %+v", got, a, old)
	}
	a.LatestHeartbeat = base.Add(25 * time.Hour)
	beat(a)
	if got := jobs(); len(got) != 1 || got[0] != a {
		t.Fatalf("jobs after b was silent for a day = %+v, want only %+v", got, a)
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

func testPutTry(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	tr := h.putTry(newTry(r, "fetch", 1))
	h.appendLog(tr, "starting\n")
	tries := h.listTries(r.DagID, r.RunID)
	if len(tries) != 1 {
		t.Fatalf("ListTries = %q, want one try", tryKeys(tries))
	}
	wantSame(t, "the stored try", tries[0], tr)

	zone := time.FixedZone("UTC+1", 3600)
	tr.State = scheduler.TaskFailed
	tr.StartDate = time.Date(2026, 3, 2, 1, 0, 0, 1001, zone)
	tr.EndDate = tr.StartDate.Add(3*time.Second + 999*time.Nanosecond)
	tr.Hostname, tr.Error, tr.JobID, tr.MaxTries = "worker-1", "boom: ünïcode \x00\xfe", 1<<40, 5
	tr.QueuedAt = time.Time{}
	h.putTry(tr)
	tries = h.listTries(r.DagID, r.RunID)
	if len(tries) != 1 {
		t.Fatalf("ListTries after replacing = %q, want one try", tryKeys(tries))
	}
	tr.Error = "boom: ünïcode \uFFFD\uFFFD"
	wantSame(t, "the replaced try", tries[0], tr)
	if got := h.getLog(tr); got != "starting\n" {
		t.Errorf("log after replacing the try = %q, want it kept (%q)", got, "starting\n")
	}

	missing := newTry(newRun("a", 5), "fetch", 1)
	wantIs(t, h.PutTry(t.Context(), missing), scheduler.ErrNotFound, "PutTry(try of a missing run)")
}

func testListTries(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	other := h.createRun(newRun("a", 1))
	h.putTry(newTry(other, "a", 1))
	for _, k := range []struct {
		task string
		n    int
	}{{"b", 1}, {"a", 10}, {"a", 2}, {"A", 1}, {"a", 1}} {
		h.putTry(newTry(r, k.task, k.n))
	}
	got := tryKeys(h.listTries(r.DagID, r.RunID))
	p := "a/" + r.RunID + "/"
	want := []string{p + "A#1", p + "a#1", p + "a#2", p + "a#10", p + "b#1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListTries = %q, want %q (task_id byte-wise, then try_number as a number)", got, want)
	}
	if tries := h.listTries("a", "nope"); len(tries) != 0 {
		t.Errorf("ListTries(unknown run) = %q, want none", tryKeys(tries))
	}
}

func testTriesInState(t *testing.T, h *harness) {
	rb := h.createRun(newRun("b", 0))
	ra1 := h.createRun(newRun("a", 1))
	ra0 := h.createRun(newRun("a", 0))
	put := func(r scheduler.Run, task string, n int, state scheduler.TaskState) {
		tr := newTry(r, task, n)
		tr.State = state
		h.putTry(tr)
	}
	put(rb, "t", 1, scheduler.TaskRunning)
	put(ra1, "t", 1, scheduler.TaskFailed)
	put(ra1, "t", 2, scheduler.TaskRunning)
	put(ra0, "u", 1, scheduler.TaskQueued)
	put(ra0, "t", 1, scheduler.TaskSuccess)
	put(ra0, "t", 3, scheduler.TaskUpForRetry)
	key := func(r scheduler.Run, task string, n int) string {
		return fmt.Sprintf("%s/%s/%s#%d", r.DagID, r.RunID, task, n)
	}
	cases := []struct {
		states []scheduler.TaskState
		want   []string
	}{
		{[]scheduler.TaskState{scheduler.TaskRunning}, []string{key(ra1, "t", 2), key(rb, "t", 1)}},
		{[]scheduler.TaskState{scheduler.TaskQueued, scheduler.TaskRunning, scheduler.TaskUpForRetry},
			[]string{key(ra0, "t", 3), key(ra0, "u", 1), key(ra1, "t", 2), key(rb, "t", 1)}},
		{[]scheduler.TaskState{"nope"}, []string{}},
		{nil, []string{}},
	}
	for _, c := range cases {
		tries, err := h.TriesInState(t.Context(), c.states...)
		if err != nil {
			t.Fatalf("TriesInState(%q): %v", c.states, err)
		}
		if tries == nil {
			t.Errorf("TriesInState(%q) returned nil, want an empty slice", c.states)
		}
		if got := tryKeys(tries); !reflect.DeepEqual(got, c.want) {
			t.Errorf("TriesInState(%q) = %q, want %q", c.states, got, c.want)
		}
	}
}

func testLogs(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	t1 := h.putTry(newTry(r, "fetch", 1))
	t2 := h.putTry(newTry(r, "fetch", 2))
	if got := h.getLog(t1); got != "" {
		t.Errorf("GetLog of a try with no log = %q, want \"\"", got)
	}
	lines := []string{"first line\n", "", "second ünïcode line\n", strings.Repeat("x", 1<<20), "\nlast"}
	for i, line := range lines {
		h.appendLog(t1, line)
		if i == 1 {
			h.appendLog(t2, "other try\n")
		}
	}
	h.appendLog(t1, "\nNUL \x00 and a stray \xff byte")
	want := strings.Join(lines, "") + "\nNUL \uFFFD and a stray \uFFFD byte"
	if got := h.getLog(t1); got != want {
		t.Errorf("GetLog = %d bytes starting %.40q, want %d bytes starting %.40q", len(got), got, len(want), want)
	}
	if got := h.getLog(t2); got != "other try\n" {
		t.Errorf("GetLog of the second try = %q, want %q", got, "other try\n")
	}
	_, err := h.GetLog(t.Context(), r.DagID, r.RunID, "fetch", 3)
	wantIs(t, err, scheduler.ErrNotFound, "GetLog(missing try)")
	_, err = h.GetLog(t.Context(), r.DagID, "nope", "fetch", 1)
	wantIs(t, err, scheduler.ErrNotFound, "GetLog(try of a missing run)")
	wantIs(t, h.AppendLog(t.Context(), r.DagID, r.RunID, "fetch", 3, "x"), scheduler.ErrNotFound, "AppendLog(missing try)")
}

func testUsers(t *testing.T, h *harness) {
	_, err := h.GetUser(t.Context(), "admin")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(unknown)")
	u := scheduler.User{Name: "admin", Role: scheduler.RoleAdmin, PasswordHash: "$2a$10$abcdefghijklmnopqrstuv"}
	v := scheduler.User{Name: "viewer", Role: scheduler.RoleViewer, PasswordHash: "h2"}
	for _, x := range []scheduler.User{u, v} {
		if err := h.PutUser(t.Context(), x); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []scheduler.User{u, v} {
		got, err := h.GetUser(t.Context(), x.Name)
		if err != nil || got != x {
			t.Errorf("GetUser(%s) = %+v, %v; want %+v", x.Name, got, err, x)
		}
	}
	u.Role, u.PasswordHash = scheduler.RoleViewer, "new hash"
	if err := h.PutUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if got, err := h.GetUser(t.Context(), "admin"); err != nil || got != u {
		t.Errorf("GetUser after replacing = %+v, %v; want %+v", got, err, u)
	}
	_, err = h.GetUser(t.Context(), "ADMIN")
	wantIs(t, err, scheduler.ErrNotFound, "GetUser(name in another case)")
}

func testTimes(t *testing.T, h *harness) {
	zones := []*time.Location{time.UTC, time.FixedZone("UTC+5:45", 5*3600+45*60), time.FixedZone("UTC-11", -11*3600)}
	instants := []time.Time{
		time.Date(2026, 3, 1, 12, 34, 56, 123456789, time.UTC), // truncated, not rounded, to ...456
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, at := range instants {
		at = at.In(zones[i%len(zones)])
		r := scheduler.Run{
			DagID: "times", RunID: fmt.Sprintf("run_%d", i), LogicalDate: at,
			DataIntervalStart: at.Add(-time.Nanosecond), DataIntervalEnd: at.Add(time.Nanosecond),
			QueuedAt: at.Add(500 * time.Nanosecond), StartDate: at.Add(time.Microsecond),
			// EndDate stays zero.
		}
		h.createRun(r)
		got := h.getRun(r.DagID, r.RunID)
		wantSame(t, fmt.Sprintf("run with times at %s", at.Format(time.RFC3339Nano)), got, r)
		if !got.EndDate.IsZero() {
			t.Errorf("zero end_date came back %v", got.EndDate)
		}
		if want := at.UTC().Truncate(time.Microsecond); !got.LogicalDate.Equal(want) || got.LogicalDate.Nanosecond()%1000 != 0 {
			t.Errorf("logical_date %s came back %s, want %s", at.Format(time.RFC3339Nano), got.LogicalDate.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		tr := newTry(r, "t", 1)
		tr.StartDate, tr.QueuedAt, tr.EndDate = at, time.Time{}, at.Add(time.Hour)
		h.putTry(tr)
		wantSame(t, "try with times", h.listTries(r.DagID, r.RunID)[0], tr)
	}
	d := scheduler.DAGState{DagID: "times", LastParsed: instants[0].In(zones[1])}
	wantSame(t, "DAG with one time set", h.syncDAG(d, false), d)
	wantSame(t, "GetDAG with one time set", h.getDAG("times"), d)

	// The logical date filter compares instants, at microsecond precision.
	f := scheduler.RunFilter{DagID: "times", LogicalDateGTE: instants[0].Truncate(time.Microsecond), LogicalDateLTE: instants[0]}
	if runs, _ := h.listRuns(f); len(runs) != 1 || runs[0].RunID != "run_0" {
		t.Errorf("ListRuns at one microsecond = %q, want run_0 alone", runIDs(runs))
	}
}

func testConf(t *testing.T, h *harness) {
	confs := []map[string]any{
		nil,
		{},
		{"users": float64(25), "seed": "abc", "ratio": 0.5, "big": float64(1 << 53), "on": true, "none": nil},
		{"nested": map[string]any{"list": []any{"a", float64(1), false, nil, map[string]any{}}, "empty": []any{}},
			"ünï": "cødé \" \\ \n \t </script>", "nul": "a\x00b"},
	}
	for i, c := range confs {
		r := newRun("conf", i)
		r.Conf = c
		h.createRun(r)
		got := h.getRun(r.DagID, r.RunID)
		if !reflect.DeepEqual(got.Conf, c) {
			t.Errorf("conf %#v came back %#v", c, got.Conf)
		}
		if (got.Conf == nil) != (c == nil) {
			t.Errorf("conf %#v came back %#v: nil and empty must stay apart", c, got.Conf)
		}
	}
	// A conf that is not JSON is refused before anything is stored.
	r := newRun("conf", 10)
	r.Conf = map[string]any{"f": func() {}}
	if err := h.CreateRun(t.Context(), r); err == nil {
		t.Error("CreateRun with a conf JSON cannot encode succeeded, want an error")
	}
	if _, err := h.GetRun(t.Context(), r.DagID, r.RunID); !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("the run with a bad conf: GetRun gave %v, want ErrNotFound", err)
	}
}

func testCanceled(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := newRun("a", 0)
	if err := h.CreateRun(ctx, r); err == nil {
		t.Error("CreateRun with a canceled context succeeded, want an error")
	}
	if _, err := h.GetRun(t.Context(), r.DagID, r.RunID); !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("after a canceled CreateRun, GetRun gave %v, want ErrNotFound", err)
	}
	h.createRun(r) // and the store still works
}

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "storetest_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	got chan int
}

func (w *pingWorker) Work(ctx context.Context, job *river.Job[pingArgs]) error {
	select {
	case w.got <- job.Args.N:
	case <-ctx.Done():
	}
	return nil
}

func testQueue(t *testing.T, h *harness) {
	worker := &pingWorker{got: make(chan int, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	q, err := h.Queue(&river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	// The client's own context outlives the test's calls; Stop ends it.
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q.Stop(ctx) //nolint:errcheck // the case has failed already
		}
	})

	res, err := q.Insert(t.Context(), pingArgs{N: 42}, nil)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	select {
	case n := <-worker.got:
		if n != 42 {
			t.Errorf("the worker got %d, want 42", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not run within 30s")
	}
	// Completion is recorded asynchronously after Work returns.
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, err := q.JobGet(t.Context(), res.Job.ID)
		if err != nil {
			t.Fatalf("JobGet: %v", err)
		}
		if job.State == rivertype.JobStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job state is %s 30s after it ran, want completed", job.State)
		}
		time.Sleep(20 * time.Millisecond)
	}

	later, err := q.Insert(t.Context(), pingArgs{N: 7}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("Insert (scheduled): %v", err)
	}
	job, err := q.JobCancel(t.Context(), later.Job.ID)
	if err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if job.State != rivertype.JobStateCancelled {
		t.Errorf("a cancelled scheduled job is %s, want cancelled", job.State)
	}
	if _, err := q.JobGet(t.Context(), later.Job.ID+1000); !errors.Is(err, river.ErrNotFound) {
		t.Errorf("JobGet(unknown id) = %v, want river.ErrNotFound", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stopped = true
	if err := q.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// The store works on after its queue stopped.
	h.createRun(newRun("a", 0))
}

func testClosed(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	tr := h.putTry(newTry(r, "t", 1))
	h.closed = true
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"SyncDAG":       func() error { _, err := h.SyncDAG(ctx, testDAG("a"), false); return err },
		"GetDAG":        func() error { _, err := h.GetDAG(ctx, "a"); return err },
		"ListDAGs":      func() error { _, err := h.ListDAGs(ctx); return err },
		"SetPaused":     func() error { return h.SetPaused(ctx, "a", true) },
		"SetNextDagRun": func() error { return h.SetNextDagRun(ctx, "a", base) },
		"CreateRun":     func() error { return h.CreateRun(ctx, newRun("a", 1)) },
		"GetRun":        func() error { _, err := h.GetRun(ctx, r.DagID, r.RunID); return err },
		"ListRuns":      func() error { _, _, err := h.ListRuns(ctx, scheduler.RunFilter{}); return err },
		"UpdateRun":     func() error { return h.UpdateRun(ctx, r) },
		"DeleteRun":     func() error { return h.DeleteRun(ctx, r.DagID, r.RunID) },
		"PutTry":        func() error { return h.PutTry(ctx, tr) },
		"ListTries":     func() error { _, err := h.ListTries(ctx, r.DagID, r.RunID); return err },
		"TriesInState":  func() error { _, err := h.TriesInState(ctx, scheduler.TaskQueued); return err },
		"AppendLog":     func() error { return h.AppendLog(ctx, tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, "x") },
		"GetLog":        func() error { _, err := h.GetLog(ctx, tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber); return err },
		"GetUser":       func() error { _, err := h.GetUser(ctx, "admin"); return err },
		"PutUser":       func() error { return h.PutUser(ctx, scheduler.User{Name: "admin"}) },
		"Queue":         func() error { _, err := h.Queue(&river.Config{}); return err },
		"Close":         h.Close,
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s after Close succeeded, want an error", name)
			continue
		}
		if !errors.Is(err, scheduler.ErrStoreClosed) {
			t.Errorf("%s after Close: %v, want an error saying the store is closed", name, err)
		}
	}
}
