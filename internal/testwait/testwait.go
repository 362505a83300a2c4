// Package testwait is test support: it waits for a condition, not for a
// guess at how long something takes.
//
// A test that sleeps "long enough" flakes on a loaded machine and wastes
// time on an idle one. For polls a condition until it holds, within a
// timeout scaled for the machine, and on failure says what was awaited and
// what the condition saw last. Holds checks that a condition stays true for
// a span, for the tests that prove something does not happen.
//
// The timeout is multiplied by USERSTREAM_TEST_WAIT_SCALE when it is set (a
// positive number: 2 doubles every wait), else by 3 when CI=true, else by 1.
package testwait

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ScaleEnv names the variable that multiplies every timeout.
const ScaleEnv = "USERSTREAM_TEST_WAIT_SCALE"

// ciScale is the multiplier when CI=true and ScaleEnv is unset: shared CI
// runners are slower and busier than a developer's machine.
const ciScale = 3

// defaultEvery is the pause between two polls.
const defaultEvery = 50 * time.Millisecond

var scale = sync.OnceValue(func() float64 {
	f, err := scaleFrom(os.LookupEnv)
	if err != nil {
		panic(err)
	}
	return f
})

// scaleFrom reads the multiplier from the environment lookup.
func scaleFrom(lookup func(string) (string, bool)) (float64, error) {
	if v, ok := lookup(ScaleEnv); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("testwait: %s=%q: want a positive number such as 2 or 0.5", ScaleEnv, v)
		}
		return f, nil
	}
	if v, _ := lookup("CI"); v == "true" {
		return ciScale, nil
	}
	return 1, nil
}

// Scale returns d multiplied for this machine (see the package doc). It
// panics, naming the variable, when USERSTREAM_TEST_WAIT_SCALE is not a
// positive number.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * scale())
}

// Option changes how For and Holds poll.
type Option func(*config)

type config struct{ every time.Duration }

// Every sets the pause between two polls (50 ms by default); a condition
// that is costly to read, such as one that runs a command, polls less often.
func Every(d time.Duration) Option { return func(c *config) { c.every = d } }

// For polls cond until it reports done and returns the value it saw then.
// When Scale(within) passes first it fails t with Fatalf, naming what was
// awaited, the time waited and the value cond saw last. cond runs on the
// caller's goroutine, so it may itself fail t (on a process that exited,
// say); For must not be called from another goroutine than the test's.
func For[T any](t testing.TB, within time.Duration, what string, cond func() (seen T, done bool), opts ...Option) T {
	t.Helper()
	c := options(opts)
	limit := Scale(within)
	deadline := time.Now().Add(limit)
	for {
		seen, done := cond()
		if done {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s; last seen: %v", what, limit, seen)
			return seen
		}
		time.Sleep(c.every)
	}
}

// Holds polls cond for the span d (not scaled: it is how long the test
// watches, not a bound on a wait) and fails t with Fatalf at the first poll
// where it does not hold, naming what should have held and the value seen.
// It returns the value seen last.
func Holds[T any](t testing.TB, d time.Duration, what string, cond func() (seen T, ok bool), opts ...Option) T {
	t.Helper()
	c := options(opts)
	end := time.Now().Add(d)
	for {
		seen, ok := cond()
		if !ok {
			t.Fatalf("%s did not hold for %s; seen: %v", what, d, seen)
			return seen
		}
		if time.Now().After(end) {
			return seen
		}
		time.Sleep(c.every)
	}
}

func options(opts []Option) config {
	c := config{every: defaultEvery}
	for _, o := range opts {
		o(&c)
	}
	return c
}
