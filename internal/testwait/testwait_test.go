package testwait

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Fatalf said instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestForReturnsTheValueThatSatisfied(t *testing.T) {
	n := 0
	got := For(t, time.Second, "n to reach 3", func() (int, bool) { n++; return n, n == 3 }, Every(time.Millisecond))
	if got != 3 {
		t.Fatalf("For returned %d, want 3", got)
	}
}

func TestForSaysWhatItAwaitedAndSawLast(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	got := For(r, 30*time.Millisecond, "the run to succeed", func() (string, bool) { return "running", false }, Every(5*time.Millisecond))
	if got != "running" {
		t.Errorf("For returned %q, want the last value seen", got)
	}
	for _, want := range []string{"the run to succeed", "last seen: running", "not within"} {
		if !strings.Contains(r.failed, want) {
			t.Errorf("failure %q does not say %q", r.failed, want)
		}
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Errorf("For gave up after %s, before its timeout", time.Since(start))
	}
}

func TestHoldsFailsAtTheFirstBreak(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	start := time.Now()
	Holds(r, 10*time.Second, "the count to stay under 3", func() (int, bool) { n++; return n, n < 3 }, Every(time.Millisecond))
	if !strings.Contains(r.failed, "the count to stay under 3") || !strings.Contains(r.failed, "seen: 3") {
		t.Errorf("failure %q does not name the condition and the value 3", r.failed)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Holds watched %s after the condition broke", time.Since(start))
	}
}

func TestHoldsWatchesTheWholeSpan(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	Holds(r, 40*time.Millisecond, "true", func() (bool, bool) { return true, true }, Every(5*time.Millisecond))
	if r.failed != "" {
		t.Errorf("Holds failed on a condition that held: %s", r.failed)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("Holds returned after %s, before its span", time.Since(start))
	}
}

func TestScaleFrom(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	for _, c := range []struct {
		env  func(string) (string, bool)
		want float64
	}{
		{env(), 1},
		{env("CI", "true"), ciScale},
		{env("CI", "false"), 1},
		{env(ScaleEnv, "2.5", "CI", "true"), 2.5},
		{env(ScaleEnv, "0.5"), 0.5},
	} {
		got, err := scaleFrom(c.env)
		if err != nil || got != c.want {
			t.Errorf("scaleFrom = %v, %v; want %v", got, err, c.want)
		}
	}
	for _, bad := range []string{"", "zero", "0", "-1", "NaN", "Inf"} {
		if _, err := scaleFrom(env(ScaleEnv, bad)); err == nil || !strings.Contains(err.Error(), ScaleEnv) {
			t.Errorf("%s=%q: error %v, want one naming the variable", ScaleEnv, bad, err)
		}
	}
}
