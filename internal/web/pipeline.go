package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/redact"
)

// Pipeline gathers the overview: how much is in the topic, stored, lagging
// and dead-lettered, the rates between two looks, the stream's latency and
// the last errors. Its sources are optional.
type Pipeline struct {
	Kafka   Kafka
	Users   Users
	Topic   string
	DLQ     string
	Group   string
	Latency prometheus.Histogram // the stream's e2e latency, when in this process
	// Metrics are the /metrics URLs of stream workers in other processes:
	// their latency histograms are read at each look and added up.
	Metrics []string
	Client  *http.Client // for Metrics; nil: a client with a 2 s timeout
	Errors  *ErrorLog    // the last warnings and errors, when in this process

	mu   sync.Mutex
	prev *Snapshot
}

// Snapshot is the overview at one moment.
type Snapshot struct {
	At           time.Time  `json:"at"`
	Topic        string     `json:"topic"`
	DLQ          string     `json:"dlq"`
	Group        string     `json:"group"`
	InTopic      int64      `json:"in_topic"`
	Stored       int64      `json:"stored"`
	Lag          int64      `json:"lag"`
	DeadLettered int64      `json:"dead_lettered"`
	ProducedRate float64    `json:"produced_per_second"`
	StoredRate   float64    `json:"stored_per_second"`
	LatencyP50   float64    `json:"latency_p50_ms"` // -1: unknown
	LatencyP99   float64    `json:"latency_p99_ms"`
	Workers      []string   `json:"workers"` // client@host of each stream worker
	GroupState   string     `json:"group_state"`
	Errors       []LogEntry `json:"errors"`
	Problems     []string   `json:"problems,omitempty"` // sources that failed
}

// reading is one look at the sources, before rates: the overview's
// figures and what the time series need beside them.
type reading struct {
	Snapshot
	topics      []broker.TopicSummary // nil: Kafka did not answer
	groupOK     bool                  // the group was described: Lag holds
	committedOK bool                  // committed holds (0 for a group not made yet)
	committed   int64                 // the group's committed offsets, summed
	usersOK     bool                  // the sink answered: Stored holds
	hist        *dto.Histogram        // the workers' latency, added up; nil: none
}

// read takes a look at every source; a source that fails is named in
// Problems and its figures stay zero.
func (p *Pipeline) read(ctx context.Context) reading {
	r := reading{Snapshot: Snapshot{At: time.Now().UTC(), Topic: p.Topic, DLQ: p.DLQ, Group: p.Group, LatencyP50: -1, LatencyP99: -1, Workers: []string{}}}
	s := &r.Snapshot
	if p.Kafka != nil {
		if ts, err := p.Kafka.Topics(ctx); err == nil {
			r.topics = ts
			for _, t := range ts {
				switch t.Topic {
				case p.Topic:
					s.InTopic = t.EndOffsets
				case p.DLQ:
					s.DeadLettered = t.EndOffsets
				}
			}
		} else {
			s.Problems = append(s.Problems, "kafka: "+err.Error())
		}
		if g, err := p.Kafka.Group(ctx, p.Group); errors.Is(err, kerr.GroupIDNotFound) {
			r.committedOK = true // nothing committed yet
		} else if err == nil {
			r.groupOK, r.committedOK = true, true
			s.Lag, s.GroupState = g.Lag, g.State
			for _, m := range g.Members {
				s.Workers = append(s.Workers, m.ClientID+"@"+m.Host)
			}
			for _, pl := range g.Partitions {
				if pl.Committed > 0 {
					r.committed += pl.Committed
				}
			}
		}
	}
	if p.Users != nil {
		if st, err := p.Users.Stats(ctx); err == nil {
			s.Stored, r.usersOK = st.Total, true
		} else {
			s.Problems = append(s.Problems, "sink: "+err.Error())
		}
	}
	var hs []*dto.Histogram
	if p.Latency != nil {
		var m dto.Metric
		if err := p.Latency.Write(&m); err == nil && m.Histogram != nil {
			hs = append(hs, m.Histogram)
		}
	}
	for _, u := range p.Metrics {
		h, err := p.scrape(ctx, u)
		if err != nil {
			s.Problems = append(s.Problems, err.Error())
			continue
		}
		hs = append(hs, h...)
	}
	if r.hist = addHistograms(hs); r.hist != nil {
		s.LatencyP50, s.LatencyP99 = quantileMS(r.hist, 0.5), quantileMS(r.hist, 0.99)
	}
	if p.Errors != nil {
		s.Errors = p.Errors.Last(10)
	}
	return r
}

// Snapshot takes a look. Rates are over the time since the previous look
// (at least a second apart; closer looks reuse the previous rates).
func (p *Pipeline) Snapshot(ctx context.Context) Snapshot {
	s := p.read(ctx).Snapshot
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev := p.prev; prev != nil {
		if dt := s.At.Sub(prev.At).Seconds(); dt >= 1 {
			s.ProducedRate = math.Max(0, float64(s.InTopic-prev.InTopic)/dt)
			s.StoredRate = math.Max(0, float64(s.Stored-prev.Stored)/dt)
		} else {
			s.ProducedRate, s.StoredRate = prev.ProducedRate, prev.StoredRate
			return s
		}
	}
	cp := s
	p.prev = &cp
	return s
}

// LatencyMetric is the stream's end-to-end latency histogram, as its
// /metrics names it.
const LatencyMetric = "userstream_stream_e2e_latency_seconds"

// scrape reads the latency histograms of one worker's /metrics. Its errors
// name the URL without its secrets.
func (p *Pipeline) scrape(ctx context.Context, raw string) ([]*dto.Histogram, error) {
	shown := redact.URL(raw)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", shown, redact.Error(err, raw))
	}
	cl := p.Client
	if cl == nil {
		cl = &http.Client{Timeout: 2 * time.Second}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: unreachable", shown)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", shown, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics %s: not Prometheus text: %w", shown, err)
	}
	var out []*dto.Histogram
	if f := fams[LatencyMetric]; f != nil {
		for _, m := range f.Metric {
			if m.Histogram != nil {
				out = append(out, m.Histogram)
			}
		}
	}
	return out, nil
}

// addHistograms sums histograms with the same buckets (the stream's, from
// each worker); nil when there is none. One with other buckets is left out.
func addHistograms(hs []*dto.Histogram) *dto.Histogram {
	if len(hs) == 0 {
		return nil
	}
	// The text format carries a +Inf bucket, a histogram's Write does not.
	finite := func(h *dto.Histogram) []*dto.Bucket {
		bs := h.Bucket
		for len(bs) > 0 && math.IsInf(bs[len(bs)-1].GetUpperBound(), 1) {
			bs = bs[:len(bs)-1]
		}
		return bs
	}
	first := finite(hs[0])
	var count uint64
	bounds := make([]float64, len(first))
	cum := make([]uint64, len(first))
	for i, b := range first {
		bounds[i] = b.GetUpperBound()
	}
	for _, h := range hs {
		bs := finite(h)
		same := len(bs) == len(bounds)
		for i := 0; same && i < len(bs); i++ {
			same = bs[i].GetUpperBound() == bounds[i]
		}
		if !same {
			continue
		}
		count += h.GetSampleCount()
		for i, b := range bs {
			cum[i] += b.GetCumulativeCount()
		}
	}
	out := &dto.Histogram{SampleCount: &count}
	for i := range bounds {
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: &bounds[i], CumulativeCount: &cum[i]})
	}
	return out
}

// quantileMS estimates a quantile of a histogram from its buckets (linear
// within a bucket), in milliseconds; -1 when it has no observation.
func quantileMS(h *dto.Histogram, q float64) float64 {
	if h == nil || h.GetSampleCount() == 0 {
		return -1
	}
	total := float64(h.GetSampleCount())
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.Bucket {
		upper, n := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if n >= rank {
			if n == below {
				return upper * 1000
			}
			return (lower + (upper-lower)*(rank-below)/(n-below)) * 1000
		}
		lower, below = upper, n
	}
	return lower * 1000
}

// LogEntry is one warning or error of the process's log.
type LogEntry struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// ErrorLog keeps the last warnings and errors of a slog logger: wrap the
// process's handler with Handler to feed it.
type ErrorLog struct {
	mu      sync.Mutex
	entries []LogEntry
}

// Handler returns next, teeing records at warn and above into l.
func (l *ErrorLog) Handler(next slog.Handler) slog.Handler { return &teeHandler{next: next, log: l} }

// Last returns up to n entries, newest first.
func (l *ErrorLog) Last(n int) []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LogEntry, 0, n)
	for i := len(l.entries) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, l.entries[i])
	}
	return out
}

type teeHandler struct {
	next  slog.Handler
	log   *ErrorLog
	attrs []slog.Attr
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(r.Message)
		add := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		h.log.mu.Lock()
		h.log.entries = append(h.log.entries, LogEntry{At: r.Time.UTC(), Level: r.Level.String(), Message: b.String()})
		if len(h.log.entries) > 100 {
			h.log.entries = h.log.entries[len(h.log.entries)-100:]
		}
		h.log.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{next: h.next.WithAttrs(as), log: h.log, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{next: h.next.WithGroup(name), log: h.log, attrs: h.attrs}
}

func (s *Server) loadOverview(r *http.Request) (any, int, error) {
	if s.cfg.Pipeline == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the pipeline")
	}
	return overview{Snapshot: s.cfg.Pipeline.Snapshot(r.Context()), Charts: s.overviewCharts()}, 0, nil
}

// events streams the overview as server-sent events until the client
// goes: a snapshot every 2 s ("snapshot") and, when the UI keeps series,
// the pipeline's series points not sent yet ("series": all of them after
// the first snapshot, then each new sample as it is taken).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Pipeline == nil {
		http.Error(w, "the pipeline is not connected", http.StatusServiceUnavailable)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var sent int64 // the newest series point sent, Unix ms
	var changed <-chan struct{}
	sendSeries := func() error {
		if s.cfg.Series == nil {
			return nil
		}
		changed = s.cfg.Series.Changed()
		lines := s.cfg.Series.Lines(SeriesQuery{Names: fixedOrder, Since: sent})
		for _, l := range lines {
			for _, p := range l.Points {
				sent = max(sent, p.At)
			}
		}
		b, _ := json.Marshal(lines)
		_, err := fmt.Fprintf(w, "event: series\ndata: %s\n\n", b)
		return err
	}
	snapshot := func() error {
		b, _ := json.Marshal(s.cfg.Pipeline.Snapshot(r.Context()))
		_, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b)
		return err
	}
	if s.cfg.Series != nil { // the first wait sends every point kept
		first := make(chan struct{})
		close(first)
		changed = first
	}
	for {
		if err := snapshot(); err != nil {
			return
		}
		fl.Flush()
		for waiting := true; waiting; {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				waiting = false
			case <-changed:
				if err := sendSeries(); err != nil {
					return
				}
				fl.Flush()
			}
		}
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
