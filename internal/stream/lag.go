package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/userstream/userstream/internal/broker"
)

// LagEvery is how often TrackLag measures a group's lag.
const LagEvery = 3 * time.Second

// TrackLag measures group's lag on topic every LagEvery until ctx ends,
// setting gauge (when not nil) and h: SetLag with the lag and the sum of
// the committed offsets, or LagFailed while the lag cannot be measured (a
// failure logged at debug level to log, which may be nil). The first
// measure is taken at once.
func TrackLag(ctx context.Context, adm *kadm.Client, group, topic string, gauge prometheus.Gauge, h *Health, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(LagEvery)
	defer t.Stop()
	for {
		gl, err := broker.GroupOffsets(ctx, adm, group, topic)
		if err == nil {
			if gauge != nil {
				gauge.Set(float64(gl.Lag))
			}
			var committed int64
			for _, c := range gl.Committed {
				committed += max(c, 0)
			}
			h.SetLag(gl.Lag, committed)
		} else if ctx.Err() == nil {
			h.LagFailed(err)
			log.Debug("lag unavailable", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RegistryWait records a schema registry wait's news (schema.WaitDecoder's
// wait): an error as a failing registry, nil as a recovered one.
func (h *Health) RegistryWait(err error) {
	if err != nil {
		h.Failing("schema registry", err)
		return
	}
	h.Recovered("schema registry")
}
