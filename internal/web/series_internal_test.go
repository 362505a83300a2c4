package web

import (
	"encoding/json"
	"fmt"
	"math"
	"runtime"
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
	s.record(at(0, 100, 0, 90, 90, 10, latencies(h, 1, 1, 1, 1)), []groupLag{{"g1", 10}})
	// 5 s later: 500 more produced, 400 stored, 450 committed, 2 dead
	// letters; four fast observations (the slow ones before do not count).
	s.record(at(5, 600, 2, 490, 540, 60, latencies(h, .003, .003, .003, .003)), []groupLag{{"g1", 60}, {"g2", 0}})
	failed := at(10, 0, 0, 0, 0, 0, latencies(h))
	failed.topics, failed.groupOK, failed.committedOK, failed.usersOK = nil, false, false, false
	s.record(failed, nil)

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
		s.record(r, groups)
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
	s.record(last, []groupLag{{"new", 1}})
	if g := s.Lines(SeriesQuery{Names: []string{SeriesGroupLag}}); len(g) != 1 || g[0].Group != "new" {
		t.Errorf("after a span without them, groups %+v, want only the new one", g)
	}
}
