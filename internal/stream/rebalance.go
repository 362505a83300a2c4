package stream

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rebalanceSignal tells a session that a rebalance is waiting on it. With
// BlockRebalanceOnPoll, a rebalance waits until the session lets it through
// (AllowRebalance), which the session does only with no batch in hand, so
// letting one through drains the pipeline: the writer idles while the last
// batch is committed and the next one polled and decoded. Draining only when
// one waits, instead of every rebalanceEvery, keeps a backed-up topic's
// pipeline full (the periodic drain left the writer idle 1-2% of the time,
// docs/decisions.md).
//
// kgo reports the wait through OnPartitionsCallbackBlocked; the signal rides
// in the client's hooks (as a HookClientClosed) so that the session finds it
// on the client its Dialer returns.
type rebalanceSignal struct{ waiting atomic.Bool }

func (s *rebalanceSignal) blocked(context.Context, *kgo.Client) { s.waiting.Store(true) }

// OnClientClosed forgets a wait: a ConsumerOpts' options serve one client
// at a time, and the next client starts with none.
func (s *rebalanceSignal) OnClientClosed(*kgo.Client) { s.waiting.Store(false) }

// signalOpts are the options that carry a new signal.
func signalOpts() []kgo.Opt {
	s := &rebalanceSignal{}
	return []kgo.Opt{kgo.WithHooks(s), kgo.OnPartitionsCallbackBlocked(s.blocked)}
}

// rebalanceWaits returns the session's test of whether to let rebalances
// through now that batches are in hand: a rebalance is waiting, for a
// client that carries the signal (ConsumerOpts); for any other, rebalanceEvery
// has passed since they were last let through. allowed is called each time
// they are.
func rebalanceWaits(cl Client) (waits func() bool, allowed func()) {
	if s := signalOf(cl); s != nil {
		// Cleared before AllowRebalance: a wait signalled after it is seen
		// next time (at worst one drain too many, never one too few).
		return s.waiting.Load, func() { s.waiting.Store(false) }
	}
	last := time.Now()
	return func() bool { return time.Since(last) > rebalanceEvery }, func() { last = time.Now() }
}

// signalOf finds the signal among cl's hooks: cl is a *kgo.Client or
// embeds one.
func signalOf(cl Client) *rebalanceSignal {
	o, ok := cl.(interface{ OptValues(opt any) []any })
	if !ok {
		return nil
	}
	for _, v := range o.OptValues(kgo.WithHooks) {
		hooks, _ := v.([]kgo.Hook)
		for _, h := range hooks {
			if s, ok := h.(*rebalanceSignal); ok {
				return s
			}
		}
	}
	return nil
}

// rebalanceEvery bounds how long a busy pipeline holds a rebalance when
// its client cannot signal one waiting.
const rebalanceEvery = 500 * time.Millisecond
