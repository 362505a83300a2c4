package web

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/userstream/userstream/internal/broker"
)

// at is a reading of the given counters at t0+sec.
func at(sec int, inTopic, dead, stored, committed, lag int64, hist *dto.Histogram) reading {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return reading{
		Snapshot: Snapshot{At: t0.Add(time.Duration(sec) * time.Second), InTopic: inTopic, DeadLettered: dead, Stored: stored, Lag: lag},
		topics:   []broker.TopicSummary{{Topic: "users_created", EndOffsets: inTopic}, {Topic: "users_created.dlq", EndOffsets: dead}},
		groupOK:  true, committedOK: true, committed: committed, usersOK: true, hist: hist,
	}
}

// latencies is the cumulative histogram after observing each latency (s).
func latencies(h prometheus.Histogram, obs ...float64) *dto.Histogram {
	for _, o := range obs {
		h.Observe(o)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		panic(err)
	}
	return m.Histogram
}

func values(t *testing.T, s *Series, name string) []float64 {
	t.Helper()
	ls := s.Lines(SeriesQuery{Names: []string{name}})
	if len(ls) != 1 {
		t.Fatalf("%s: %d lines", name, len(ls))
	}
	var out []float64
	for _, p := range ls[0].Points {
		out = append(out, p.Value)
	}
	return out
}

func same(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) != math.IsNaN(b[i]) || (!math.IsNaN(a[i]) && math.Abs(a[i]-b[i]) > 1e-9) {
			return false
		}
	}
	return true
}

// TestSeriesRecord: rates are deltas over the interval, latency is over
// the interval's observations only, and a source that did not answer is a
// gap (null), never a zero.
func TestSeriesRecord(t *testing.T) {
	s := NewSeries(&Pipeline{}, 5*time.Second, time.Hour)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: []float64{.005, .01, .02, .05, .1, .2, .5, 1}})
	s.record(at(0, 100, 0, 90, 90, 10, latencies(h, 1, 1, 1, 1)), groupsLook{lags: []groupLag{{"g1", 10}}})
	// 5 s later: 500 more produced, 400 stored, 450 committed, 2 dead
	// letters; four fast observations (the slow ones before do not count).
	s.record(at(5, 600, 2, 490, 540, 60, latencies(h, .003, .003, .003, .003)), groupsLook{lags: []groupLag{{"g1", 60}, {"g2", 0}}})
	failed := at(10, 0, 0, 0, 0, 0, latencies(h))
	failed.topics, failed.groupOK, failed.committedOK, failed.usersOK = nil, false, false, false
	s.record(failed, groupsLook{})

	nan := math.NaN()
	for name, want := range map[string][]float64{
		SeriesProduced:    {nan, 100, nan},
		SeriesStored:      {nan, 80, nan},
		SeriesConsumed:    {nan, 90, nan},
		SeriesDeadLetters: {nan, 24, nan},
		SeriesLag:         {10, 60, nan},
		SeriesLatencyP50:  {nan, 2.5, nan}, // within the 5 ms bucket, not the 1 s ones
		SeriesLatencyP99:  {nan, 4.95, nan},
	} {
		if got := values(t, s, name); !same(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	g := s.Lines(SeriesQuery{Group: "g1"})
	if len(g) != 1 || g[0].Name != SeriesGroupLag || len(g[0].Points) != 2 || g[0].Points[1].Value != 60 {
		t.Errorf("group g1's lag = %+v, want 10 then 60", g)
	}
	tp := s.Lines(SeriesQuery{Topic: "users_created"})
	if len(tp) != 1 || len(tp[0].Points) != 2 || tp[0].Points[1].Value != 100 {
		t.Errorf("topic rate = %+v, want a gap then 100/s", tp)
	}
	// since: only the points after it.
	third := failed.At.UnixMilli()
	if ls := s.Lines(SeriesQuery{Names: []string{SeriesLag}, Since: third - 1}); len(ls[0].Points) != 1 || ls[0].Points[0].At != third {
		t.Errorf("since: %+v, want the last point only", ls)
	}
	// JSON: [unix_ms, value], null for a gap.
	b, err := json.Marshal(s.Lines(SeriesQuery{Names: []string{SeriesLag}}))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`[{"name":"lag","unit":"messages","points":[[%d,10],[%d,60],[%d,null]]}]`,
		third-10000, third-5000, third)
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant\n%s", b, want)
	}
}

// TestSeriesBounded: a series keeps span/every points, the oldest going
// first; groups and topics beyond 64 get no series, and one not seen for
// a span is dropped. Its memory, measured, stays within what the points
// need: adding to a full ring allocates nothing.
func TestSeriesBounded(t *testing.T) {
	const every, span = 5 * time.Second, time.Hour
	size := int(span / every) // 720
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewSeries(&Pipeline{}, every, span)
	var groups []groupLag
	var topics []broker.TopicSummary
	for i := range 100 {
		groups = append(groups, groupLag{fmt.Sprintf("group-%03d", i), int64(i)})
		topics = append(topics, broker.TopicSummary{Topic: fmt.Sprintf("topic-%03d", i), EndOffsets: int64(i)})
	}
	for i := range 2 * size {
		r := at(i*5, int64(i), 0, int64(i), int64(i), 0, nil)
		r.topics = topics
		s.record(r, groupsLook{lags: groups})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	lines := s.Lines(SeriesQuery{})
	if want := len(fixedOrder) + 2*maxKeyed; len(lines) != want {
		t.Fatalf("%d lines, want %d (7 + 64 groups + 64 topics)", len(lines), want)
	}
	for _, l := range lines {
		if len(l.Points) != size {
			t.Fatalf("%s %s%s: %d points, want %d", l.Name, l.Group, l.Topic, len(l.Points), size)
		}
	}
	lag := s.Lines(SeriesQuery{Names: []string{SeriesProduced}})[0].Points
	if first, last := lag[0].At, lag[len(lag)-1].At; last-first != int64(size-1)*5000 {
		t.Errorf("the kept points span %d ms, want the newest %d", last-first, size)
	}
	// 16 bytes a point: the points themselves, plus the maps and headers.
	points := uint64(len(lines) * size * 16)
	grown := after.HeapAlloc - before.HeapAlloc
	t.Logf("%d series x %d points: %d KiB of points, heap grew %d KiB", len(lines), size, points/1024, grown/1024)
	if grown > points+points/4 {
		t.Errorf("the heap grew %d bytes for %d bytes of points", grown, points)
	}
	r := s.fixed[SeriesLag]
	if n := testing.AllocsPerRun(100, func() { r.add(1, 1) }); n != 0 {
		t.Errorf("adding to a full ring allocates %v times", n)
	}
	// A group gone for a span is dropped, making room.
	last := at(2*size*5+int(span.Seconds())+5, 0, 0, 0, 0, 0, nil)
	s.record(last, groupsLook{lags: []groupLag{{"new", 1}}})
	if g := s.Lines(SeriesQuery{Names: []string{SeriesGroupLag}}); len(g) != 1 || g[0].Group != "new" {
		t.Errorf("after a span without them, groups %+v, want only the new one", g)
	}
}

// TestSeriesWorkers: each member of a group with its partitions, lag and
// the growth of its partitions' committed offsets; one that a sample
// misses is gone from then, and a static member back under its instance
// id is active again.
func TestSeriesWorkers(t *testing.T) {
	s := NewSeries(&Pipeline{}, 5*time.Second, time.Hour)
	member := func(id, instance string, parts ...int32) broker.MemberDescription {
		return broker.MemberDescription{MemberID: id, InstanceID: instance, ClientID: "stream", Host: "10.0.0." + id,
			Assigned: map[string][]int32{"users_created": parts}}
	}
	group := func(committed [3]int64, members ...broker.MemberDescription) groupsLook {
		d := broker.GroupDescription{Group: "g", Members: members}
		for p, c := range committed {
			d.Partitions = append(d.Partitions, broker.PartitionLag{Topic: "users_created", Partition: int32(p), Committed: c, End: 100, Lag: 100 - c})
		}
		return groupsLook{ok: true, descs: []broker.GroupDescription{d}}
	}
	s.record(at(0, 0, 0, 0, 0, 0, nil), group([3]int64{10, 10, 10}, member("1", "", 0, 1), member("2", "w2", 2)))
	// 5 s: worker 1 committed 40+10 rows, worker 2 25.
	s.record(at(5, 0, 0, 0, 0, 0, nil), group([3]int64{50, 20, 35}, member("1", "", 0, 1), member("2", "w2", 2)))
	ws := s.Workers()
	if len(ws) != 1 || ws[0].Active != 2 || len(ws[0].Workers) != 2 {
		t.Fatalf("workers %+v, want group g with 2 active", ws)
	}
	w1, w2 := ws[0].Workers[0], ws[0].Workers[1]
	if w1.MemberID != "1" || fmt.Sprint(w1.Partitions) != "[users_created/0 users_created/1]" || w1.Lag != 130 ||
		w1.RowsPerS == nil || *w1.RowsPerS != 10 || w1.Committed != 50 {
		t.Errorf("worker 1: %+v, want partitions 0 and 1, lag 130, 10 rows/s, 50 rows", *w1)
	}
	if w2.InstanceID != "w2" || w2.Lag != 65 || w2.RowsPerS == nil || *w2.RowsPerS != 5 || !w2.Gone.IsZero() {
		t.Errorf("worker 2: %+v, want lag 65, 5 rows/s, active", *w2)
	}
	// 10 s: worker 2 is missing (killed, its session over): gone; worker 1
	// took its partition.
	s.record(at(10, 0, 0, 0, 0, 0, nil), group([3]int64{60, 20, 35}, member("1", "", 0, 1, 2)))
	ws = s.Workers()
	if ws[0].Active != 1 || ws[0].Workers[1].MemberID != "2" || ws[0].Workers[1].Gone != at(10, 0, 0, 0, 0, 0, nil).At || ws[0].Workers[1].RowsPerS != nil {
		t.Errorf("after worker 2 left: %+v %+v, want it gone at 10 s", *ws[0].Workers[0], *ws[0].Workers[1])
	}
	// 15 s: the group is empty (Kafka says so): worker 1 is gone too.
	s.record(at(15, 0, 0, 0, 0, 0, nil), groupsLook{ok: true, empty: []string{"g"}})
	if ws = s.Workers(); ws[0].Active != 0 {
		t.Errorf("an empty group has %d active workers", ws[0].Active)
	}
	// A sample where Kafka did not answer changes nothing.
	s.record(at(17, 0, 0, 0, 0, 0, nil), groupsLook{})
	// 20 s: worker 2 restarted with its instance id and a new member id:
	// active again, its rate unknown until the next sample.
	s.record(at(20, 0, 0, 0, 0, 0, nil), group([3]int64{60, 20, 35}, member("9", "w2", 0, 1, 2)))
	ws = s.Workers()
	if ws[0].Active != 1 || ws[0].Workers[0].InstanceID != "w2" || ws[0].Workers[0].MemberID != "9" || ws[0].Workers[0].RowsPerS != nil {
		t.Errorf("after worker 2 came back: %+v", *ws[0].Workers[0])
	}
	// A group that appears after a look without it: everything it
	// committed is its workers' (at the first look ever, nothing is).
	s2 := NewSeries(&Pipeline{}, 5*time.Second, time.Hour)
	s2.record(at(0, 0, 0, 0, 0, 0, nil), groupsLook{ok: true, lags: []groupLag{{"other", 0}}})
	fresh := group([3]int64{5, 5, 5}, member("1", "", 0, 1, 2))
	fresh.lags = []groupLag{{"g", 285}}
	s2.record(at(5, 0, 0, 0, 0, 0, nil), fresh)
	if ws := s2.Workers(); len(ws) != 1 || ws[0].Workers[0].Committed != 15 {
		t.Errorf("a new group's worker: %+v, want the 15 rows it committed", ws)
	}
	// A gone worker is forgotten a span after it went.
	s.record(at(20+3600+10, 0, 0, 0, 0, 0, nil), group([3]int64{60, 20, 35}, member("9", "w2", 0, 1, 2)))
	if ws = s.Workers(); len(ws[0].Workers) != 1 {
		t.Errorf("an hour later %d workers are remembered, want the active one", len(ws[0].Workers))
	}
}

// TestWorkerHistory: each worker keeps its rows/s and lag a sample, the
// last workerPoints of them (memory bounded however long it runs), and a
// gone worker's history ends where it went.
func TestWorkerHistory(t *testing.T) {
	s := NewSeries(&Pipeline{}, 5*time.Second, time.Hour)
	m := broker.MemberDescription{MemberID: "1", ClientID: "stream", Assigned: map[string][]int32{"users_created": {0}}}
	look := func(committed int64) groupsLook {
		return groupsLook{ok: true, descs: []broker.GroupDescription{{Group: "g", Members: []broker.MemberDescription{m},
			Partitions: []broker.PartitionLag{{Topic: "users_created", Partition: 0, Committed: committed, End: 1_000_000, Lag: 1_000_000 - committed}}}}}
	}
	n := workerPoints + 30
	for i := range n {
		s.record(at(5*i, 0, 0, 0, 0, 0, nil), look(int64(10*i*i))) // rows/s grows: 4i-2 at sample i
	}
	w := s.Workers()[0].Workers[0]
	if len(w.History) != workerPoints || cap(s.workers["g\x00"+"1"].History) != workerPoints {
		t.Fatalf("history of %d points (capacity %d), want the last %d", len(w.History), cap(s.workers["g\x001"].History), workerPoints)
	}
	for j, p := range w.History {
		i := n - workerPoints + j
		if p.At != at(5*i, 0, 0, 0, 0, 0, nil).At.UnixMilli() || p.RowsPerS != float64(4*i-2) || p.Lag != int64(1_000_000-10*i*i) {
			t.Fatalf("point %d: %+v, want sample %d: %d rows/s, lag %d", j, p, i, 4*i-2, 1_000_000-10*i*i)
		}
	}
	b, err := json.Marshal(w.History[:1])
	if err != nil || !strings.HasPrefix(string(b), "[[") || !strings.HasSuffix(string(b), fmt.Sprintf(",%d]]", w.History[0].Lag)) {
		t.Errorf("history JSON %s (%v), want [[unix_ms, rows_per_s, lag]]", b, err)
	}
	if pts := strings.Fields(w.SparkRate()); len(pts) != workerPoints || pts[len(pts)-1] != "120.0,1.0" {
		t.Errorf("rate sparkline %q: want %d points ending at the top right", w.SparkRate(), workerPoints)
	}
	// Gone: no point more.
	s.record(at(5*n, 0, 0, 0, 0, 0, nil), groupsLook{ok: true, empty: []string{"g"}})
	if g := s.Workers()[0].Workers[0]; g.Gone.IsZero() || len(g.History) != workerPoints || g.History[len(g.History)-1] != w.History[len(w.History)-1] {
		t.Errorf("a gone worker's history changed: gone %v, %d points", g.Gone, len(g.History))
	}
}
