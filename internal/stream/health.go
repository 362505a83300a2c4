package stream

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health tracks whether a stream is doing its job, for /healthz. It is
// unhealthy when
//   - an operation (sink upsert, offset commit, dead-letter produce, fetch,
//     schema registry, rejoin, lag) has failed without a success for longer
//     than failAfter, or
//   - the group's lag is above zero and nothing has been committed, by this
//     worker or the group, for longer than stallAfter.
//
// A nil *Health ignores every call, so the stream needs no checks.
type Health struct {
	stallAfter, failAfter time.Duration
	now                   func() time.Time

	mu           sync.Mutex
	lastProgress time.Time
	lag          int64
	committed    int64
	lagKnown     bool
	fails        map[string]failure
}

type failure struct {
	since time.Time
	err   error
}

// Default thresholds of NewHealth.
const (
	DefaultStallAfter = 60 * time.Second
	DefaultFailAfter  = 30 * time.Second
)

// NewHealth returns a Health with the given thresholds (zero: the defaults).
func NewHealth(stallAfter, failAfter time.Duration) *Health {
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	if failAfter <= 0 {
		failAfter = DefaultFailAfter
	}
	return &Health{stallAfter: stallAfter, failAfter: failAfter, now: time.Now,
		lastProgress: time.Now(), fails: map[string]failure{}}
}

// SetLag records the group's lag and the sum of its committed offsets as
// last measured. Committed offsets that moved count as progress, so a
// worker with no partitions of its own is healthy while the group works.
func (h *Health) SetLag(lag, committed int64) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.lagKnown && committed != h.committed {
		h.lastProgress = h.now()
	}
	h.lag, h.committed, h.lagKnown = lag, committed, true
	h.mu.Unlock()
	h.Recovered("lag")
}

// LagFailed records that the lag could not be measured (the broker is
// unreachable, say).
func (h *Health) LagFailed(err error) { h.Failing("lag", err) }

// Check returns nil when healthy, or an error saying what is wrong and for
// how long.
func (h *Health) Check() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var errs []error
	ops := make([]string, 0, len(h.fails))
	for op := range h.fails {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		f := h.fails[op]
		if d := now.Sub(f.since); d > h.failAfter {
			errs = append(errs, fmt.Errorf("%s failing for %s: %w", op, d.Round(time.Second), f.err))
		}
	}
	if h.lagKnown && h.lag > 0 {
		if d := now.Sub(h.lastProgress); d > h.stallAfter {
			errs = append(errs, fmt.Errorf("stalled: lag %d and nothing committed for %s", h.lag, d.Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

// String is Check's verdict in one line: "ok" or the problems.
func (h *Health) String() string {
	if err := h.Check(); err != nil {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return "ok"
}

func (h *Health) progress() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.lastProgress = h.now()
	h.mu.Unlock()
}

// idle notes a poll that found nothing with nothing in hand: a caught-up
// stream is not a stalled one, whatever the last lag reading said.
func (h *Health) idle() { h.progress() }

// Failing records that op failed with err; it stays failing until
// Recovered(op). The stream calls it for its own operations; callers use it
// for theirs (waiting for the registry at start, say).
func (h *Health) Failing(op string, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.fails[op]
	if !ok {
		f.since = h.now()
	}
	f.err = err
	h.fails[op] = f
}

// Recovered records that op works again.
func (h *Health) Recovered(op string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	delete(h.fails, op)
	h.mu.Unlock()
}
