package web

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// series answers GET /api/ui/series: the lines kept by the process, a
// JSON list of {name, unit, [group|topic,] points: [[unix_ms, value]]}.
// name (repeated or comma-separated), group, topic and since (Unix ms)
// narrow it.
func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Series == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": errNotConnected("the time series").Error(), "status": 503})
		return
	}
	q := r.URL.Query()
	sq := SeriesQuery{Group: q.Get("group"), Topic: q.Get("topic")}
	for _, n := range q["name"] {
		for _, part := range strings.Split(n, ",") {
			if part = strings.TrimSpace(part); part != "" {
				sq.Names = append(sq.Names, part)
			}
		}
	}
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("since %q: want Unix milliseconds", v), "status": 400})
			return
		}
		sq.Since = n
	}
	writeJSON(w, http.StatusOK, s.cfg.Series.Lines(sq))
}

// chart is one chart of a page: its lines, drawn by static/charts.js
// from the JSON in the page's data attributes and followed live, and the
// last points as a table for screen readers and copying.
type chart struct {
	ID, Title, Unit string
	Lines           []chartLine
	Rows            []chartRow // newest first
	Every           time.Duration
	Max             int // points drawn at most
}

// chartLine names a line of a chart: the series and its label.
type chartLine struct {
	Name, Group, Topic, Label string
}

// Key is how charts.js matches a line of the series JSON.
func (l chartLine) Key() string { return l.Name + "|" + l.Group + "|" + l.Topic }

type chartRow struct {
	At     time.Time
	Values []string
}

// tableRows is how many of the newest points a chart's table shows.
const tableRows = 10

// chart builds a chart of the given lines from the series kept now.
func (s *Server) chart(id, title, unit string, lines ...chartLine) *chart {
	if s.cfg.Series == nil {
		return nil
	}
	c := &chart{ID: id, Title: title, Unit: unit, Lines: lines, Every: s.cfg.Series.Every(), Max: s.cfg.Series.size}
	byTime := map[int64][]string{}
	var times []int64
	for i, l := range lines {
		for _, ln := range s.cfg.Series.Lines(SeriesQuery{Names: []string{l.Name}, Group: l.Group, Topic: l.Topic}) {
			if ln.Group != l.Group || ln.Topic != l.Topic {
				continue
			}
			for _, p := range ln.Points {
				row, ok := byTime[p.At]
				if !ok {
					row = make([]string, len(lines))
					for j := range row {
						row[j] = "–"
					}
					byTime[p.At] = row
					times = append(times, p.At)
				}
				row[i] = number(p.Value)
			}
		}
	}
	// Newest first, at most tableRows.
	for i := len(times) - 1; i >= 0 && len(c.Rows) < tableRows; i-- {
		c.Rows = append(c.Rows, chartRow{At: time.UnixMilli(times[i]).UTC(), Values: byTime[times[i]]})
	}
	return c
}

// number shows a value as the tables do: an en dash when unknown, whole
// numbers from 10 up, one decimal below.
func number(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case math.Abs(v) >= 10 || v == math.Trunc(v):
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// chartSet is the charts of a page and the series URL it polls for their
// new points ("" on the overview: its event stream brings them).
type chartSet struct {
	Src    string
	Charts []*chart
}

// overview is the overview page: the snapshot (its JSON twin as it was)
// and the charts.
type overview struct {
	Snapshot
	Charts *chartSet `json:"-"`
}

// overviewCharts are the overview's charts: throughput, lag, latency and
// dead letters.
func (s *Server) overviewCharts() *chartSet {
	if s.cfg.Series == nil {
		return nil
	}
	return &chartSet{Charts: []*chart{
		s.chart("chart-throughput", "Throughput", "messages/s",
			chartLine{Name: SeriesProduced, Label: "produced/s"}, chartLine{Name: SeriesConsumed, Label: "consumed/s"},
			chartLine{Name: SeriesStored, Label: "stored/s"}),
		s.chart("chart-lag", "Consumer lag", "messages", chartLine{Name: SeriesLag, Label: "lag"}),
		s.chart("chart-latency", "End-to-end latency", "ms",
			chartLine{Name: SeriesLatencyP50, Label: "p50 ms"}, chartLine{Name: SeriesLatencyP99, Label: "p99 ms"}),
		s.chart("chart-dead", "Dead letters", "per minute", chartLine{Name: SeriesDeadLetters, Label: "dead letters/min"}),
	}}
}

// groupCharts is a consumer group's lag over time (its page, and a sink
// connector's, whose tasks are a group).
func (s *Server) groupCharts(group string) *chartSet {
	if s.cfg.Series == nil {
		return nil
	}
	return &chartSet{Src: "/api/ui/series?group=" + url.QueryEscape(group), Charts: []*chart{
		s.chart("chart-group-lag", "Lag of "+group, "messages", chartLine{Name: SeriesGroupLag, Group: group, Label: "lag"}),
	}}
}

// topicCharts is a topic's messages per second over time.
func (s *Server) topicCharts(topic string) *chartSet {
	if s.cfg.Series == nil {
		return nil
	}
	return &chartSet{Src: "/api/ui/series?topic=" + url.QueryEscape(topic), Charts: []*chart{
		s.chart("chart-topic-rate", "Messages into "+topic, "messages/s", chartLine{Name: SeriesTopicRate, Topic: topic, Label: "messages/s"}),
	}}
}
