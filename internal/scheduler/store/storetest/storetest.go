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
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

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
