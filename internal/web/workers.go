package web

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/broker"
)

// maxWorkers bounds the workers remembered (active and gone), and
// workerPoints the samples of each one's rows/s and lag kept (its
// history): at most 256 × 120 points of 24 bytes, under 1 MiB.
const (
	maxWorkers   = 256
	workerPoints = 120
)

// WorkerPoint is one sample of a worker: when (Unix ms), its rows/s (NaN
// while unknown: null in JSON) and its lag. It is [unix_ms, rows_per_s,
// lag] in JSON.
type WorkerPoint struct {
	At       int64
	RowsPerS float64
	Lag      int64
}

// MarshalJSON writes [unix_ms, rows_per_s or null, lag].
func (p WorkerPoint) MarshalJSON() ([]byte, error) {
	b, _ := Point{At: p.At, Value: p.RowsPerS}.MarshalJSON()
	b = b[:len(b)-1]
	return fmt.Appendf(b, ",%d]", p.Lag), nil
}

// Worker is one member of a consumer group as the sampler saw it (the
// Spark master's worker list): a stream worker, or a Connect task.
type Worker struct {
	Group      string   `json:"group"`
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Partitions []string `json:"partitions"` // topic/partition
	Lag        int64    `json:"lag"`        // over its partitions
	// RowsPerS is how fast its partitions' committed offsets grew over
	// the last interval; null until two samples saw it.
	RowsPerS  *float64  `json:"rows_per_s"`
	Committed int64     `json:"committed"` // rows committed while it owned the partitions
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Gone is when a sample first missed it (it left, or Kafka dropped
	// it after its session timed out: killed); zero while active.
	Gone time.Time `json:"gone,omitzero"`
	// History is its last samples (at most workerPoints), oldest first:
	// rows/s and lag over time, until it went.
	History []WorkerPoint `json:"history"`
}

// Rate shows RowsPerS: an en dash while unknown.
func (w Worker) Rate() string {
	if w.RowsPerS == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f", *w.RowsPerS)
}

// Sparkline geometry: a small picture of a worker's rows/s or lag in its
// table row, the numbers beside it.
const (
	sparkW = 120
	sparkH = 24
)

// SparkRate and SparkLag are the polyline points of the worker's rows/s
// and lag over its history, scaled to their own maximum ("" with fewer
// than two points).
func (w Worker) SparkRate() string {
	return spark(w.History, func(p WorkerPoint) float64 { return p.RowsPerS })
}

// SparkLag: see SparkRate.
func (w Worker) SparkLag() string {
	return spark(w.History, func(p WorkerPoint) float64 { return float64(p.Lag) })
}

// Peak is the largest rows/s of the worker's history, for the sparkline's
// title ("–" when none is known).
func (w Worker) Peak() string {
	top := math.NaN()
	for _, p := range w.History {
		if !math.IsNaN(p.RowsPerS) && !(p.RowsPerS <= top) {
			top = p.RowsPerS
		}
	}
	return number(top)
}

func spark(h []WorkerPoint, v func(WorkerPoint) float64) string {
	if len(h) < 2 {
		return ""
	}
	top := 0.0
	for _, p := range h {
		if x := v(p); !math.IsNaN(x) {
			top = max(top, x)
		}
	}
	var b strings.Builder
	for i, p := range h {
		x := v(p)
		if math.IsNaN(x) {
			x = 0
		}
		y := float64(sparkH - 1)
		if top > 0 {
			y -= x / top * float64(sparkH-2)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", float64(i)*float64(sparkW)/float64(len(h)-1), y)
	}
	return strings.TrimSpace(b.String())
}

// workerKey names a worker across samples: its static instance id when it
// has one (it keeps it across restarts), else its member id.
func workerKey(group string, m broker.MemberDescription) string {
	return group + "\x00" + cmp.Or(m.InstanceID, m.MemberID)
}

// recordWorkers updates the workers from the groups described at this
// sample; empty lists the groups that have no member now, listed every
// group Kafka listed. Called with s.mu held.
func (s *Series) recordWorkers(now time.Time, descs []broker.GroupDescription, empty []string, listed map[string]bool) {
	if s.workers == nil {
		s.workers, s.committed = map[string]*Worker{}, map[string]int64{}
	}
	seen := map[string]bool{}
	described := map[string]bool{}
	for _, g := range empty {
		described[g] = true
	}
	for _, d := range descs {
		described[d.Group] = true
		parts := map[string]broker.PartitionLag{}
		for _, p := range d.Partitions {
			parts[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = p
		}
		for _, m := range d.Members {
			key := workerKey(d.Group, m)
			w := s.workers[key]
			if w == nil {
				if len(s.workers) >= maxWorkers {
					continue
				}
				w = &Worker{Group: d.Group, FirstSeen: now}
				s.workers[key] = w
			}
			dt := now.Sub(w.LastSeen).Seconds()
			fresh := w.LastSeen.IsZero() || !w.Gone.IsZero()
			w.MemberID, w.InstanceID, w.ClientID, w.Host = m.MemberID, m.InstanceID, m.ClientID, m.Host
			w.LastSeen, w.Gone, w.Lag, w.Partitions = now, time.Time{}, 0, w.Partitions[:0]
			var grew int64
			for _, t := range sortedKeys(m.Assigned) {
				for _, p := range m.Assigned[t] {
					name := fmt.Sprintf("%s/%d", t, p)
					w.Partitions = append(w.Partitions, name)
					pl, ok := parts[name]
					if !ok {
						continue
					}
					w.Lag += max(pl.Lag, 0)
					ck := d.Group + "\x00" + name
					was, ok := s.committed[ck]
					if !ok && s.listed != nil {
						// No commit on this partition at the last look (a
						// group new since, or one that had not committed
						// yet, as a real Kafka lists a group while its
						// first members join): all of it is its owner's.
						was, ok = 0, true
					}
					if ok && pl.Committed > was {
						grew += pl.Committed - was
					}
				}
			}
			w.Committed += grew
			pt := WorkerPoint{At: now.UnixMilli(), RowsPerS: math.NaN(), Lag: w.Lag}
			if fresh || dt <= 0 {
				w.RowsPerS = nil
			} else {
				r := math.Round(float64(grew)/dt*10) / 10
				w.RowsPerS, pt.RowsPerS = &r, r
			}
			if len(w.History) == workerPoints {
				w.History = slices.Delete(w.History, 0, 1)
			}
			if w.History == nil {
				w.History = make([]WorkerPoint, 0, workerPoints)
			}
			w.History = append(w.History, pt)
			seen[key] = true
		}
		for _, p := range d.Partitions {
			if p.Committed >= 0 {
				s.committed[d.Group+"\x00"+fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = p.Committed
			}
		}
	}
	s.listed = listed
	span := time.Duration(s.size) * s.every
	for key, w := range s.workers {
		switch {
		case seen[key]:
		case !w.Gone.IsZero():
			if now.Sub(w.Gone) > span {
				delete(s.workers, key)
			}
		case described[w.Group]:
			w.Gone, w.RowsPerS = now, nil
		}
	}
}

// WorkerGroup is the workers of one group, active first.
type WorkerGroup struct {
	Group   string    `json:"group"`
	Active  int       `json:"active"`
	Workers []*Worker `json:"workers"`
}

// Workers returns a copy of the workers by group, active ones first (by
// client id), then the gone ones, most recently gone first.
func (s *Series) Workers() []WorkerGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := map[string]*WorkerGroup{}
	for _, w := range s.workers {
		g := by[w.Group]
		if g == nil {
			g = &WorkerGroup{Group: w.Group}
			by[w.Group] = g
		}
		cp := *w
		cp.Partitions, cp.History = slices.Clone(w.Partitions), slices.Clone(w.History)
		if w.RowsPerS != nil {
			r := *w.RowsPerS
			cp.RowsPerS = &r
		}
		g.Workers = append(g.Workers, &cp)
		if w.Gone.IsZero() {
			g.Active++
		}
	}
	out := make([]WorkerGroup, 0, len(by))
	for _, k := range sortedKeys(by) {
		g := by[k]
		slices.SortFunc(g.Workers, func(a, b *Worker) int {
			if ag, bg := !a.Gone.IsZero(), !b.Gone.IsZero(); ag != bg {
				if ag {
					return 1
				}
				return -1
			}
			if !a.Gone.IsZero() {
				return b.Gone.Compare(a.Gone)
			}
			return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.MemberID, b.MemberID))
		})
		out = append(out, *g)
	}
	return out
}

type workersPage struct {
	Every  time.Duration `json:"-"`
	Points int           `json:"-"`
	Groups []WorkerGroup `json:"groups"`
}

func (s *Server) loadWorkers(r *http.Request) (any, int, error) {
	if s.cfg.Series == nil || s.cfg.Kafka == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the sampling of Kafka's groups")
	}
	return workersPage{Every: s.cfg.Series.Every(), Points: workerPoints, Groups: s.cfg.Series.Workers()}, 0, nil
}
