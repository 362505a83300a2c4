package connect_test

import (
	"testing"
	"time"

	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/testwait"
)

// Two workers, one connector with tasks.max=3: six group members share
// the partitions; one worker stops mid-run and the other takes them over.
// (In process the stop is a cancel, which leaves the group; a SIGKILLed
// worker's partitions move after the session timeout instead.)
func TestTwoWorkersShareAndTakeOver(t *testing.T) {
	addr := startBroker(t)
	w1 := startWorker(t, addr, "w1")
	w2 := startWorker(t, addr, "w2")
	jdbc, open := sinkURL(t)
	cfg := jdbcConfig(jdbc)
	cfg["tasks.max"] = "3"
	expectCode(t, "create", call(t, w1.url, "POST", "/connectors", true, map[string]any{"name": "pg", "config": cfg}, nil), 201)

	var st connect.Status
	testwait.For(t, 20*time.Second, "six tasks on two workers", func() (connect.Status, bool) {
		call(t, w2.url, "GET", "/connectors/pg/status", false, nil, &st)
		return st, len(st.Tasks) == 6
	})
	workers := map[string]int{}
	for _, ts := range st.Tasks {
		workers[ts.WorkerID]++
	}
	if workers["w1"] != 3 || workers["w2"] != 3 {
		t.Fatalf("tasks by worker = %v, want 3 on each", workers)
	}
	produceUsers(t, addr, 0, 5000)
	testwait.For(t, 30*time.Second, "some users", func() (int64, bool) { n := count(t, open); return n, n > 0 })
	w1.stop(t)
	produceUsers(t, addr, 5000, 5000)
	testwait.For(t, 60*time.Second, "10000 users", func() (int64, bool) { n := count(t, open); return n, n == 10000 })
	testwait.For(t, 20*time.Second, "only w2's tasks in status", func() (connect.Status, bool) {
		call(t, w2.url, "GET", "/connectors/pg/status", false, nil, &st)
		return st, len(st.Tasks) == 3
	})
	for _, ts := range st.Tasks {
		if ts.WorkerID != "w2" || ts.State != connect.StateRunning {
			t.Fatalf("task %+v, want RUNNING on w2", ts)
		}
	}
}
