package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ivs(pairs ...string) []Interval {
	var out []Interval
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Interval{ts(pairs[i]), ts(pairs[i+1])})
	}
	return out
}

func fmtIvs(v []Interval) string {
	var b strings.Builder
	for _, iv := range v {
		fmt.Fprintf(&b, "[%s, %s) ", iv.Start.Format(time.RFC3339), iv.End.Format(time.RFC3339))
	}
	return b.String()
}

// TestDue checks slot enumeration against hand-computed tables: each
// preset, cron with a time zone across both DST changes, @every, @once,
// start and end dates, catchup on and off.
func TestDue(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		spec       string
		tz         *time.Location
		start, end string
		catchup    bool
		last, now  string
		limit      int
		want       []Interval
	}{
		{name: "@daily, no catchup, the original's start date: only the latest interval",
			spec: "@daily", start: "2023-09-03T10:00:00Z", now: "2026-12-01T21:00:00Z",
			want: ivs("2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")},
		{name: "@daily, no catchup, latest already run", spec: "@daily", start: "2023-09-03T10:00:00Z",
			last: "2026-11-30T00:00:00Z", now: "2026-12-01T21:00:00Z"},
		{name: "@daily, catchup from an unaligned start", spec: "@daily", catchup: true,
			start: "2026-11-28T10:00:00Z", now: "2026-12-01T21:00:00Z",
			want: ivs("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")},
		{name: "@daily, catchup after the last run", spec: "@daily", catchup: true,
			start: "2026-11-01T00:00:00Z", last: "2026-11-29T00:00:00Z", now: "2026-12-01T21:00:00Z",
			want: ivs("2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")},
		{name: "@hourly, catchup", spec: "@hourly", catchup: true, start: "2026-12-01T18:30:00Z", now: "2026-12-01T21:10:00Z",
			want: ivs("2026-12-01T19:00:00Z", "2026-12-01T20:00:00Z", "2026-12-01T20:00:00Z", "2026-12-01T21:00:00Z")},
		{name: "@weekly (Sunday 00:00)", spec: "@weekly", catchup: true, start: "2026-11-01T00:00:00Z", now: "2026-11-20T12:00:00Z",
			want: ivs("2026-11-01T00:00:00Z", "2026-11-08T00:00:00Z", "2026-11-08T00:00:00Z", "2026-11-15T00:00:00Z")},
		{name: "@monthly", spec: "@monthly", catchup: true, start: "2026-01-15T00:00:00Z", now: "2026-04-02T00:00:00Z",
			want: ivs("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")},
		{name: "@yearly, no catchup", spec: "@yearly", start: "2024-06-01T00:00:00Z", now: "2026-12-01T00:00:00Z",
			want: ivs("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")},
		{name: "cron with minutes, catchup limited", spec: "*/15 * * * *", catchup: true, start: "2026-12-01T10:00:00Z",
			now: "2026-12-01T12:00:00Z", limit: 3,
			want: ivs("2026-12-01T10:00:00Z", "2026-12-01T10:15:00Z", "2026-12-01T10:15:00Z", "2026-12-01T10:30:00Z",
				"2026-12-01T10:30:00Z", "2026-12-01T10:45:00Z")},
		{name: "cron, no catchup, start years ago (a minutely cron stays cheap)", spec: "* * * * *", start: "2020-01-01T00:00:00Z",
			now: "2026-12-01T12:00:30Z", want: ivs("2026-12-01T11:59:00Z", "2026-12-01T12:00:00Z")},
		// 09:00 Berlin is 08:00Z in winter and 07:00Z in summer: the
		// interval over the spring change lasts 23 h, over autumn's 25 h.
		{name: "09:00 Berlin across the spring change", spec: "0 9 * * *", tz: berlin, catchup: true,
			start: "2026-03-28T00:00:00Z", now: "2026-03-30T12:00:00Z",
			want: ivs("2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z")},
		{name: "09:00 Berlin across the autumn change", spec: "0 9 * * *", tz: berlin, catchup: true,
			start: "2026-10-24T00:00:00Z", now: "2026-10-26T12:00:00Z",
			want: ivs("2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z")},
		// 02:30 does not exist on 29 March in Berlin: no tick that day, the
		// interval spans the change. On 25 October it comes twice: one tick.
		{name: "02:30 Berlin in the spring gap: skipped", spec: "30 2 * * *", tz: berlin, catchup: true,
			start: "2026-03-28T00:00:00Z", now: "2026-03-31T12:00:00Z",
			want: ivs("2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z")},
		{name: "02:30 Berlin in the autumn repeat: once", spec: "30 2 * * *", tz: berlin, catchup: true,
			start: "2026-10-24T00:00:00Z", now: "2026-10-26T12:00:00Z",
			want: ivs("2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")},
		{name: "@every 10s, catchup", spec: "@every 10s", catchup: true, start: "2026-12-01T00:00:00Z", now: "2026-12-01T00:00:35Z",
			want: ivs("2026-12-01T00:00:00Z", "2026-12-01T00:00:10Z", "2026-12-01T00:00:10Z", "2026-12-01T00:00:20Z",
				"2026-12-01T00:00:20Z", "2026-12-01T00:00:30Z")},
		{name: "@every 10s, catchup after the last", spec: "@every 10s", catchup: true, start: "2026-12-01T00:00:00Z",
			last: "2026-12-01T00:00:10Z", now: "2026-12-01T00:00:35Z",
			want: ivs("2026-12-01T00:00:20Z", "2026-12-01T00:00:30Z")},
		{name: "@every 10s, no catchup", spec: "@every 10s", start: "2026-12-01T00:00:00Z", now: "2026-12-01T00:00:35Z",
			want: ivs("2026-12-01T00:00:20Z", "2026-12-01T00:00:30Z")},
		{name: "@every 10s, before the first interval ends", spec: "@every 10s", start: "2026-12-01T00:00:00Z", now: "2026-12-01T00:00:09Z"},
		{name: "@once, due", spec: "@once", start: "2026-12-01T10:00:00Z", now: "2026-12-01T10:00:01Z",
			want: ivs("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z")},
		{name: "@once, already run", spec: "@once", start: "2026-12-01T10:00:00Z", last: "2026-12-01T10:00:00Z", now: "2026-12-02T00:00:00Z"},
		{name: "@once, before the start", spec: "@once", start: "2026-12-01T10:00:00Z", now: "2026-12-01T09:00:00Z"},
		{name: "none", spec: "none", start: "2026-12-01T00:00:00Z", now: "2027-01-01T00:00:00Z"},
		{name: "end date: no logical date after it", spec: "@daily", catchup: true, start: "2026-11-25T00:00:00Z",
			end: "2026-11-27T00:00:00Z", now: "2026-12-01T12:00:00Z",
			want: ivs("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z",
				"2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z")},
		{name: "start date in the future", spec: "@hourly", catchup: true, start: "2027-01-01T00:00:00Z", now: "2026-12-01T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := ParseSchedule(tt.spec, tt.tz)
			if err != nil {
				t.Fatal(err)
			}
			d := &DAG{StartDate: ts(tt.start), Catchup: tt.catchup}
			if tt.end != "" {
				d.EndDate = ts(tt.end)
			}
			var last time.Time
			if tt.last != "" {
				last = ts(tt.last)
			}
			limit := tt.limit
			if limit == 0 {
				limit = 100
			}
			got := Due(d, sched, last, ts(tt.now), limit)
			if fmtIvs(got) != fmtIvs(tt.want) {
				t.Errorf("Due =\n  %s\nwant\n  %s", fmtIvs(got), fmtIvs(tt.want))
			}
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, spec := range []string{"@every", "@every -1s", "@every soon", "@fortnightly", "61 * * * *", "* * *", "bogus"} {
		if _, err := ParseSchedule(spec, nil); err == nil || !strings.Contains(err.Error(), spec) {
			t.Errorf("ParseSchedule(%q) = %v, want an error naming the spec", spec, err)
		}
	}
}

func TestNextInterval(t *testing.T) {
	sched, _ := ParseSchedule("@daily", nil)
	d := &DAG{StartDate: ts("2026-11-28T10:00:00Z")}
	if iv, ok := NextInterval(d, sched, time.Time{}); !ok || !iv.Start.Equal(ts("2026-11-29T00:00:00Z")) {
		t.Errorf("first = %v %v", iv, ok)
	}
	if iv, ok := NextInterval(d, sched, ts("2026-11-30T00:00:00Z")); !ok || !iv.Start.Equal(ts("2026-12-01T00:00:00Z")) {
		t.Errorf("after 11-30 = %v %v", iv, ok)
	}
	once, _ := ParseSchedule("@once", nil)
	if _, ok := NextInterval(d, once, d.StartDate); ok {
		t.Error("@once has no next interval after its run")
	}
}

func TestRunID(t *testing.T) {
	for _, tt := range []struct {
		typ  RunType
		at   time.Time
		want string
	}{
		{RunScheduled, ts("2023-09-03T10:00:00Z"), "scheduled__2023-09-03T10:00:00+00:00"},
		{RunManual, time.Date(2026, 12, 1, 21, 0, 0, 123456789, time.UTC), "manual__2026-12-01T21:00:00.123456+00:00"},
		{RunBackfill, ts("2026-11-30T00:00:00Z"), "backfill__2026-11-30T00:00:00+00:00"},
	} {
		if got := RunID(tt.typ, tt.at); got != tt.want {
			t.Errorf("RunID(%s, %v) = %q, want %q", tt.typ, tt.at, got, tt.want)
		}
	}
}
