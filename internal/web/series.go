package web

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/userstream/userstream/internal/broker"
)

// The series the process keeps (GET /api/ui/series). Rates are over the
// interval between two samples; latency is over the observations made in
// that interval, not since the workers started.
const (
	SeriesProduced    = "produced_per_s"       // the pipeline topic's end offsets
	SeriesConsumed    = "consumed_per_s"       // the stream group's committed offsets
	SeriesStored      = "stored_per_s"         // rows in the sink
	SeriesLag         = "lag"                  // the stream group's lag
	SeriesLatencyP50  = "latency_p50_ms"       // end to end, over the interval
	SeriesLatencyP99  = "latency_p99_ms"       // end to end, over the interval
	SeriesDeadLetters = "dead_letters_per_min" // the DLQ's end offsets
	SeriesGroupLag    = "group_lag"            // one per consumer group (Line.Group)
	SeriesTopicRate   = "topic_messages_per_s" // one per topic (Line.Topic)
)

// Default sampling: every 5 s, the last hour kept.
const (
	DefaultSampleEvery = 5 * time.Second
	DefaultSeriesSpan  = time.Hour
)

// maxPoints bounds a series: a sampling interval under a second keeps
// less than the span.
const maxPoints = 3600

// maxKeyed bounds the per-group and per-topic series: beyond it a new
// group or topic gets none (the pipeline's own always have theirs).
const maxKeyed = 64

// Point is one sample: when (Unix milliseconds) and the value; a NaN value
// (unknown: a source did not answer, no latency observed) is null in JSON.
type Point struct {
	At    int64
	Value float64
}

// MarshalJSON writes [unix_ms, value] or [unix_ms, null].
func (p Point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32)
	b = append(b, '[')
	b = strconv.AppendInt(b, p.At, 10)
	b = append(b, ',')
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, math.Round(p.Value*1000)/1000, 'f', -1, 64)
	}
	return append(b, ']'), nil
}

// Line is one series: its name, unit, the group or topic it is about (for
// group_lag and topic_messages_per_s) and its points, oldest first.
type Line struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Group  string  `json:"group,omitempty"`
	Topic  string  `json:"topic,omitempty"`
	Points []Point `json:"points"`
}

// ring is a fixed-size circle of points: allocated once, never grown.
type ring struct {
	unit    string
	at      []int64
	v       []float64
	next, n int
}

func newRing(size int, unit string) *ring {
	return &ring{unit: unit, at: make([]int64, size), v: make([]float64, size)}
}

func (r *ring) add(at int64, v float64) {
	r.at[r.next], r.v[r.next] = at, v
	r.next = (r.next + 1) % len(r.at)
	if r.n < len(r.at) {
		r.n++
	}
}

// last is the newest point's time; 0 when empty.
func (r *ring) last() int64 {
	if r.n == 0 {
		return 0
	}
	return r.at[(r.next-1+len(r.at))%len(r.at)]
}

// points returns the points after since (Unix ms), oldest first.
func (r *ring) points(since int64) []Point {
	out := make([]Point, 0, r.n)
	for i := range r.n {
		j := (r.next - r.n + i + len(r.at)) % len(r.at)
		if r.at[j] > since {
			out = append(out, Point{At: r.at[j], Value: r.v[j]})
		}
	}
	return out
}

// Series samples the pipeline's figures every few seconds into bounded
// rings in memory: the same sources as the overview (Pipeline), plus the
// lag of every consumer group and the rate of every topic. Memory is fixed
// by the span and the interval: 16 bytes a point, span/every points per
// series (at most 3600), 7 series plus at most 64 groups and 64 topics (a group or topic
// not seen for a whole span is dropped). Run samples; the rest reads.
type Series struct {
	p     *Pipeline
	every time.Duration
	size  int

	mu      sync.Mutex
	fixed   map[string]*ring
	groups  map[string]*ring
	topics  map[string]*ring
	prev    *reading
	changed chan struct{} // closed at the next sample
	// workers are the members of the groups with members (workers.go),
	// committed the offsets of their partitions at the last sample.
	workers   map[string]*Worker
	committed map[string]int64
	listed    map[string]bool // the groups of the last look; nil before one
}

// NewSeries keeps the pipeline's figures every `every` for `span` (at
// most 3600 points a series); zero values take DefaultSampleEvery and
// DefaultSeriesSpan.
func NewSeries(p *Pipeline, every, span time.Duration) *Series {
	if every <= 0 {
		every = DefaultSampleEvery
	}
	if span <= 0 {
		span = DefaultSeriesSpan
	}
	size := min(maxPoints, max(2, int(span/every)))
	s := &Series{p: p, every: every, size: size, groups: map[string]*ring{}, topics: map[string]*ring{}, changed: make(chan struct{})}
	s.fixed = map[string]*ring{}
	for name, unit := range fixedUnits {
		s.fixed[name] = newRing(size, unit)
	}
	return s
}

// fixedUnits are the pipeline's own series and their units, in the order
// they are listed.
var fixedUnits = map[string]string{
	SeriesProduced: "messages/s", SeriesConsumed: "messages/s", SeriesStored: "rows/s", SeriesLag: "messages",
	SeriesLatencyP50: "ms", SeriesLatencyP99: "ms", SeriesDeadLetters: "messages/min",
}

var fixedOrder = []string{SeriesProduced, SeriesConsumed, SeriesStored, SeriesLag, SeriesLatencyP50, SeriesLatencyP99, SeriesDeadLetters}

// Every is the sampling interval.
func (s *Series) Every() time.Duration { return s.every }

// Run samples at once and then every interval until ctx ends.
func (s *Series) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Changed is closed when the next sample is in.
func (s *Series) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// sample reads the sources once (each bounded by the interval) and adds a
// point to every series.
func (s *Series) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.every, 2*time.Second))
	defer cancel()
	cur := s.p.read(ctx)
	var gl groupsLook
	if s.p.Kafka != nil {
		if gs, err := s.p.Kafka.Groups(ctx); err == nil {
			gl.ok = true
			for _, g := range gs {
				gl.lags = append(gl.lags, groupLag{g.Group, g.Lag})
				if g.Members == 0 {
					gl.empty = append(gl.empty, g.Group)
					continue
				}
				if len(gl.descs) >= maxKeyed {
					continue
				}
				if d, err := s.p.Kafka.Group(ctx, g.Group); err == nil {
					gl.descs = append(gl.descs, d)
				}
			}
		}
	}
	s.record(cur, gl)
}

// groupsLook is what a sample saw of the consumer groups: each one's lag,
// the description of those with members, and those without.
type groupsLook struct {
	ok    bool // Kafka answered: the workers not seen are gone
	lags  []groupLag
	descs []broker.GroupDescription
	empty []string
}

type groupLag struct {
	group string
	lag   int64
}

// record adds one sample; split from sample so that tests can feed it.
func (s *Series) record(cur reading, gl groupsLook) {
	nan := math.NaN()
	at := cur.At.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.prev
	dt := 0.0
	if prev != nil {
		dt = cur.At.Sub(prev.At).Seconds()
	}
	rate := func(okPrev, okCur bool, a, b int64, per float64) float64 {
		if prev == nil || dt <= 0 || !okPrev || !okCur {
			return nan
		}
		return math.Max(0, float64(b-a)/dt*per)
	}
	kafkaOK := cur.topics != nil
	var prevKafka, prevCommitted, prevUsers bool
	var p reading
	if prev != nil {
		p = *prev
		prevKafka, prevCommitted, prevUsers = p.topics != nil, p.committedOK, p.usersOK
	}
	s.fixed[SeriesProduced].add(at, rate(prevKafka, kafkaOK, p.InTopic, cur.InTopic, 1))
	s.fixed[SeriesConsumed].add(at, rate(prevCommitted, cur.committedOK, p.committed, cur.committed, 1))
	s.fixed[SeriesStored].add(at, rate(prevUsers, cur.usersOK, p.Stored, cur.Stored, 1))
	s.fixed[SeriesDeadLetters].add(at, rate(prevKafka, kafkaOK, p.DeadLettered, cur.DeadLettered, 60))
	lag := nan
	if cur.groupOK {
		lag = float64(cur.Lag)
	}
	s.fixed[SeriesLag].add(at, lag)
	p50, p99 := nan, nan
	if prev != nil {
		if d := subHistograms(cur.hist, p.hist); d != nil && d.GetSampleCount() > 0 {
			p50, p99 = quantileMS(d, 0.5), quantileMS(d, 0.99)
		}
	}
	s.fixed[SeriesLatencyP50].add(at, p50)
	s.fixed[SeriesLatencyP99].add(at, p99)

	s.evict(at) // first, so that a gone group makes room for a new one
	for _, g := range gl.lags {
		s.keyed(s.groups, g.group, "messages").addOrDrop(at, float64(g.lag))
	}
	if kafkaOK {
		prevEnds := map[string]int64{}
		for _, t := range p.topics {
			prevEnds[t.Topic] = t.EndOffsets
		}
		for _, t := range cur.topics {
			r := s.keyed(s.topics, t.Topic, "messages/s")
			if was, ok := prevEnds[t.Topic]; ok {
				r.addOrDrop(at, rate(true, true, was, t.EndOffsets, 1))
			} else {
				r.addOrDrop(at, nan)
			}
		}
	}
	if gl.ok {
		listed := map[string]bool{}
		for _, g := range gl.lags {
			listed[g.group] = true
		}
		s.recordWorkers(cur.At, gl.descs, gl.empty, listed)
	}
	kept := cur
	kept.Errors, kept.Problems, kept.Workers = nil, nil, nil
	s.prev = &kept
	close(s.changed)
	s.changed = make(chan struct{})
}

// keyed returns the ring of a group or topic, made on first sight; nil
// when maxKeyed are kept already.
func (s *Series) keyed(m map[string]*ring, key, unit string) *ring {
	if r := m[key]; r != nil {
		return r
	}
	if len(m) >= maxKeyed {
		return nil
	}
	r := newRing(s.size, unit)
	m[key] = r
	return r
}

// add on a nil ring (a group beyond maxKeyed) drops the point.
func (r *ring) addOrDrop(at int64, v float64) {
	if r != nil {
		r.add(at, v)
	}
}

// evict drops the groups and topics not seen for a whole span.
func (s *Series) evict(now int64) {
	span := int64(s.size) * s.every.Milliseconds()
	for _, m := range []map[string]*ring{s.groups, s.topics} {
		for k, r := range m {
			if now-r.last() > span {
				delete(m, k)
			}
		}
	}
}

// SeriesQuery selects lines: by name, group or topic ("" = any), and the
// points after Since (Unix ms; 0 = all).
type SeriesQuery struct {
	Names        []string
	Group, Topic string
	Since        int64
}

// Lines returns the series that match q: the pipeline's in a fixed order,
// then groups and topics by name. A line with no point after Since is
// still listed, with no points.
func (s *Series) Lines(q SeriesQuery) []Line {
	want := func(name string) bool {
		if len(q.Names) == 0 {
			return true
		}
		for _, n := range q.Names {
			if n == name {
				return true
			}
		}
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Line{}
	if q.Group == "" && q.Topic == "" {
		for _, name := range fixedOrder {
			if want(name) {
				r := s.fixed[name]
				out = append(out, Line{Name: name, Unit: r.unit, Points: r.points(q.Since)})
			}
		}
	}
	if want(SeriesGroupLag) && q.Topic == "" {
		for _, k := range sortedKeys(s.groups) {
			if q.Group == "" || q.Group == k {
				r := s.groups[k]
				out = append(out, Line{Name: SeriesGroupLag, Unit: r.unit, Group: k, Points: r.points(q.Since)})
			}
		}
	}
	if want(SeriesTopicRate) && q.Group == "" {
		for _, k := range sortedKeys(s.topics) {
			if q.Topic == "" || q.Topic == k {
				r := s.topics[k]
				out = append(out, Line{Name: SeriesTopicRate, Unit: r.unit, Topic: k, Points: r.points(q.Since)})
			}
		}
	}
	return out
}

// subHistograms is cur minus prev, bucket by bucket: the observations
// between two looks. A count that went down (a worker restarted) makes it
// cur alone; nil when cur is nil or the buckets differ.
func subHistograms(cur, prev *dto.Histogram) *dto.Histogram {
	if cur == nil {
		return nil
	}
	if prev == nil || len(prev.Bucket) != len(cur.Bucket) || prev.GetSampleCount() > cur.GetSampleCount() {
		return cur
	}
	count := cur.GetSampleCount() - prev.GetSampleCount()
	out := &dto.Histogram{SampleCount: &count, Bucket: make([]*dto.Bucket, len(cur.Bucket))}
	for i, b := range cur.Bucket {
		pb := prev.Bucket[i]
		if pb.GetUpperBound() != b.GetUpperBound() || pb.GetCumulativeCount() > b.GetCumulativeCount() {
			return cur
		}
		n := b.GetCumulativeCount() - pb.GetCumulativeCount()
		ub := b.GetUpperBound()
		out.Bucket[i] = &dto.Bucket{UpperBound: &ub, CumulativeCount: &n}
	}
	return out
}
