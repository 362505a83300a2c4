package stream

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the stream's Prometheus metrics. Register them with
// NewMetrics on a registry of the caller's (no global registry).
type Metrics struct {
	Consumed     prometheus.Counter
	Stored       prometheus.Counter
	Committed    prometheus.Counter
	DeadLettered *prometheus.CounterVec
	Retries      *prometheus.CounterVec
	Rejoins      prometheus.Counter
	BatchSeconds prometheus.Histogram
	// Latency is from a user's fetch (its ingested_at) to its row stored.
	Latency prometheus.Histogram
	Lag     prometheus.Gauge
}

// NewMetrics creates the stream metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_consumed_total", Help: "Messages consumed and committed."}),
		Stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_stored_total", Help: "Users upserted into the sink (replays count again)."}),
		Committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_committed_total", Help: "Offsets committed, in messages."}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userstream_stream_dead_lettered_total", Help: "Messages sent to the dead-letter topic, by kind (decode, validate, sink)."},
			[]string{"kind"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userstream_stream_retries_total", Help: "Retried operations, by operation."}, []string{"op"}),
		Rejoins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userstream_stream_rejoins_total", Help: "Times the group moved on without this worker and it rejoined with a new client."}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "userstream_stream_batch_seconds", Help: "Time to store and commit one batch (dead letters, sink, commit).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "userstream_stream_e2e_latency_seconds", Help: "From a user's fetch from the API (ingested_at) to its row stored in the sink.",
			Buckets: []float64{.005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30, 60, 300}}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "userstream_stream_lag", Help: "Messages in users_created not yet committed by the group."}),
	}
	reg.MustRegister(m.Consumed, m.Stored, m.Committed, m.DeadLettered, m.Retries, m.Rejoins, m.BatchSeconds, m.Latency, m.Lag)
	return m
}
