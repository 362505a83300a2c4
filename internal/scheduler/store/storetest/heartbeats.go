package storetest

// The heartbeat case: each scheduler process's row in table job.

import (
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

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
