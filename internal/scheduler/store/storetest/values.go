package storetest

// The round-trip cases: times at microsecond precision, conf as JSON.

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

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
