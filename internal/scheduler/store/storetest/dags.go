package storetest

// The DAG cases: SyncDAG, SetPaused, SetNextDagRun, ListDAGs, GetDAG.

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

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
