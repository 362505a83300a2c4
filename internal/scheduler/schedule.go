package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Interval is a data interval: a run with logical date Start covers
// [Start, End) and is due at End, as in Airflow. An @once run's interval is
// [start_date, start_date].
type Interval struct {
	Start, End time.Time
}

// Schedule says when a DAG's data intervals fall.
type Schedule interface {
	// First is the first interval that starts at or after t, and false when
	// there is none (an @once schedule has one, "none" none).
	First(t time.Time) (Interval, bool)
	// After is the interval that follows iv.
	After(iv Interval) (Interval, bool)
	// Latest is the last interval that has ended at or before now and
	// starts at or after from, and false when there is none.
	Latest(from, now time.Time) (Interval, bool)
	// String is the spec the schedule was parsed from.
	String() string
}

// Presets accepted besides cron expressions.
var presets = map[string]string{
	"@hourly":   "0 * * * *",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@weekly":   "0 0 * * 0",
	"@monthly":  "0 0 1 * *",
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
}

// ParseSchedule parses a schedule: a five-field cron expression, a preset
// (@hourly, @daily, @weekly, @monthly, @yearly), @once, @every DURATION
// (e.g. @every 10s: intervals of that length from the start date), or ""
// or "none" for no schedule. Cron expressions and presets are read in tz
// (UTC when nil), so "0 2 * * *" in Europe/Berlin is 02:00 Berlin time
// whatever the season.
func ParseSchedule(spec string, tz *time.Location) (Schedule, error) {
	if tz == nil {
		tz = time.UTC
	}
	s := strings.TrimSpace(spec)
	switch {
	case s == "" || s == "none" || s == "None":
		return noSchedule{}, nil
	case s == "@once":
		return onceSchedule{}, nil
	case strings.HasPrefix(s, "@every "):
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(s, "@every ")))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("schedule %q: @every needs a positive duration such as 10s, 5m or 1h", spec)
		}
		return everySchedule{d: d, spec: s}, nil
	}
	expr := s
	if p, ok := presets[s]; ok {
		expr = p
	} else if strings.HasPrefix(s, "@") {
		return nil, fmt.Errorf("schedule %q: unknown preset; use @once, @hourly, @daily, @weekly, @monthly, @yearly, @every DURATION, a cron expression or none", spec)
	}
	c, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: not a cron expression (minute hour day-of-month month day-of-week): %w", spec, err)
	}
	return cronSchedule{c: c, tz: tz, spec: s}, nil
}

type noSchedule struct{}

func (noSchedule) First(time.Time) (Interval, bool)             { return Interval{}, false }
func (noSchedule) After(Interval) (Interval, bool)              { return Interval{}, false }
func (noSchedule) Latest(time.Time, time.Time) (Interval, bool) { return Interval{}, false }
func (noSchedule) String() string                               { return "none" }

// onceSchedule has one interval, [start_date, start_date].
type onceSchedule struct{}

func (onceSchedule) First(t time.Time) (Interval, bool) { return Interval{t, t}, true }
func (onceSchedule) After(Interval) (Interval, bool)    { return Interval{}, false }
func (onceSchedule) Latest(from, now time.Time) (Interval, bool) {
	if now.Before(from) {
		return Interval{}, false
	}
	return Interval{from, from}, true
}
func (onceSchedule) String() string { return "@once" }

// everySchedule has intervals of d from the start date: [start+k·d,
// start+(k+1)·d). Its grid is anchored at the start passed to First or
// Latest, which the scheduler always gives as the DAG's start date.
type everySchedule struct {
	d    time.Duration
	spec string
}

func (e everySchedule) First(t time.Time) (Interval, bool) { return Interval{t, t.Add(e.d)}, true }
func (e everySchedule) After(iv Interval) (Interval, bool) {
	return Interval{iv.End, iv.End.Add(e.d)}, true
}
func (e everySchedule) Latest(from, now time.Time) (Interval, bool) {
	k := now.Sub(from) / e.d // whole intervals that have ended
	if k < 1 {
		return Interval{}, false
	}
	start := from.Add((k - 1) * e.d)
	return Interval{start, start.Add(e.d)}, true
}
func (e everySchedule) String() string { return e.spec }

// cronSchedule has intervals between consecutive cron ticks in tz.
type cronSchedule struct {
	c    cron.Schedule
	tz   *time.Location
	spec string
}

// next is the first tick strictly after t. A wall-clock time that comes
// twice when clocks go back (02:30 on the last Sunday of October in Berlin)
// is one tick, the first; one that does not exist when clocks go forward is
// no tick, so that interval simply spans the change.
func (c cronSchedule) next(t time.Time) time.Time {
	lt := t.In(c.tz)
	n := c.c.Next(lt)
	if !n.IsZero() && wall(n) == wall(lt) {
		n = c.c.Next(n)
	}
	return n.UTC()
}

func wall(t time.Time) [6]int {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return [6]int{y, int(mo), d, h, mi, s}
}

// align is the first tick at or after t.
func (c cronSchedule) align(t time.Time) time.Time { return c.next(t.Add(-time.Nanosecond)) }

func (c cronSchedule) First(t time.Time) (Interval, bool) {
	s := c.align(t)
	if s.IsZero() {
		return Interval{}, false
	}
	return c.interval(s)
}

func (c cronSchedule) interval(s time.Time) (Interval, bool) {
	e := c.next(s)
	if e.IsZero() {
		return Interval{}, false
	}
	return Interval{s, e}, true
}

func (c cronSchedule) After(iv Interval) (Interval, bool) { return c.interval(iv.End) }

// Latest walks forward from a window before now that is wide enough to
// hold a whole interval, trying wider windows for sparse schedules, so a
// minutely cron from a start date years ago costs a few dozen steps.
func (c cronSchedule) Latest(from, now time.Time) (Interval, bool) {
	for _, w := range []time.Duration{2 * time.Hour, 3 * 24 * time.Hour, 70 * 24 * time.Hour, 800 * 24 * time.Hour, 0} {
		begin := from
		if w > 0 && now.Add(-w).After(from) {
			begin = now.Add(-w)
		}
		iv, ok := c.First(begin)
		if !ok || iv.End.After(now) {
			if w == 0 {
				return Interval{}, false
			}
			continue
		}
		for {
			nx, ok := c.After(iv)
			if !ok || nx.End.After(now) {
				return iv, true
			}
			iv = nx
		}
	}
	return Interval{}, false
}

func (c cronSchedule) String() string { return c.spec }

// Due returns the intervals of d due at now, oldest first, at most limit
// of them: every interval whose end has passed since the last scheduled
// one (last: its logical date; zero when the DAG has none) with catchup,
// only the latest without. Intervals start at or after the start date and
// no later than the end date.
func Due(d *DAG, sched Schedule, last, now time.Time, limit int) []Interval {
	if limit <= 0 || d.StartDate.IsZero() {
		return nil
	}
	inRange := func(iv Interval) bool {
		return !iv.Start.Before(d.StartDate) && (d.EndDate.IsZero() || !iv.Start.After(d.EndDate))
	}
	due := func(iv Interval) bool { return !iv.End.After(now) }
	if _, once := sched.(onceSchedule); once {
		iv, _ := sched.First(d.StartDate)
		if last.IsZero() && due(iv) && inRange(iv) {
			return []Interval{iv}
		}
		return nil
	}
	if !d.Catchup {
		iv, ok := sched.Latest(d.StartDate, now)
		if !ok || !inRange(iv) || (!last.IsZero() && !iv.Start.After(last)) {
			return nil
		}
		return []Interval{iv}
	}
	var (
		iv Interval
		ok bool
	)
	if last.IsZero() {
		iv, ok = sched.First(d.StartDate)
	} else {
		iv, ok = sched.First(last)
		if ok && !iv.Start.After(last) {
			iv, ok = sched.After(iv)
		}
	}
	var out []Interval
	for ok && due(iv) && inRange(iv) && len(out) < limit {
		out = append(out, iv)
		iv, ok = sched.After(iv)
	}
	return out
}

// NextInterval is the next interval of d after the last scheduled one
// (last zero: the first), whether due or not, for display; false when there
// is none.
func NextInterval(d *DAG, sched Schedule, last time.Time) (Interval, bool) {
	if d.StartDate.IsZero() {
		return Interval{}, false
	}
	var (
		iv Interval
		ok bool
	)
	if last.IsZero() {
		iv, ok = sched.First(d.StartDate)
	} else {
		iv, ok = sched.First(last)
		if ok && !iv.Start.After(last) {
			iv, ok = sched.After(iv)
		}
		if _, once := sched.(onceSchedule); once {
			return Interval{}, false
		}
	}
	if !ok || (!d.EndDate.IsZero() && iv.Start.After(d.EndDate)) {
		return Interval{}, false
	}
	return iv, true
}

// RunID forms a run id as Airflow does: "<type>__<logical date in ISO 8601
// with offset>", e.g. scheduled__2023-09-03T10:00:00+00:00.
func RunID(runType RunType, logical time.Time) string {
	return string(runType) + "__" + isoformat(logical)
}

// isoformat is Python's datetime.isoformat() of an aware UTC time:
// microseconds only when there are some.
func isoformat(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 != 0 {
		return t.Format("2006-01-02T15:04:05.000000+00:00")
	}
	return t.Format("2006-01-02T15:04:05+00:00")
}
