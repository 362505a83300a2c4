package storetest

// The try and log cases: ClaimTry, PutTry, ListTries, TriesInState, AppendLog,
// GetLog.

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

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
