package stream

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHealth walks a Health through the states /healthz reports, on a clock
// the test moves.
func TestHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(60*time.Second, 30*time.Second)
	h.now = func() time.Time { return now }
	h.lastProgress = now
	step := func(d time.Duration) { now = now.Add(d) }
	down := errors.New("connection refused")
	cases := []struct {
		name string
		do   func()
		want string // "" healthy, else a substring of the error
	}{
		{"fresh", func() {}, ""},
		{"a failure not yet long", func() { h.Failing("sink upsert", down); step(29 * time.Second) }, ""},
		{"a failure past failAfter", func() { step(2 * time.Second) }, "sink upsert failing for 31s: connection refused"},
		{"recovered, and a batch committed", func() { h.Recovered("sink upsert"); h.progress() }, ""},
		{"lag but recent progress", func() { h.SetLag(500, 1000); step(59 * time.Second) }, ""},
		{"lag and no commit past stallAfter", func() { step(2 * time.Second); h.SetLag(500, 1000) }, "stalled: lag 500 and nothing committed for 1m1s"},
		{"the group committed", func() { h.SetLag(400, 1100) }, ""},
		{"no lag, long idle", func() { h.SetLag(0, 1100); step(10 * time.Minute) }, ""},
		{"two problems at once", func() {
			h.SetLag(10, 1100)
			h.Failing("offset commit", down)
			h.Failing("fetch", down)
			step(31 * time.Second)
		}, "fetch failing for 31s"},
		{"nil Health is healthy", func() { h = nil }, ""},
	}
	for _, c := range cases {
		c.do()
		err := h.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unhealthy: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: Check() = %v, want it to say %q", c.name, err, c.want)
		}
	}
}
