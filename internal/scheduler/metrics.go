package scheduler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the scheduler's Prometheus metrics. Register them with
// NewMetrics on a registry of the caller's; a nil *Metrics records nothing.
type Metrics struct {
	RunsCreated   *prometheus.CounterVec   // dag_id, run_type
	RunsEnded     *prometheus.CounterVec   // dag_id, state
	TriesEnded    *prometheus.CounterVec   // dag_id, state
	TaskDuration  *prometheus.HistogramVec // dag_id
	ScheduleDelay *prometheus.HistogramVec // dag_id: due -> try started
}

// NewMetrics creates the scheduler metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RunsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "userstream_scheduler_dag_runs_created_total",
			Help: "DAG runs created, by DAG and run type (scheduled, manual, backfill)."}, []string{"dag_id", "run_type"}),
		RunsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "userstream_scheduler_dag_runs_ended_total",
			Help: "DAG runs ended, by DAG and state (success, failed)."}, []string{"dag_id", "state"}),
		TriesEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "userstream_scheduler_task_tries_total",
			Help: "Task tries ended, by DAG and state (success, failed, up_for_retry)."}, []string{"dag_id", "state"}),
		TaskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "userstream_scheduler_task_duration_seconds",
			Help: "Duration of task tries.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}, []string{"dag_id"}),
		ScheduleDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "userstream_scheduler_schedule_delay_seconds",
			Help:    "From when a try was due (its run's interval end, its trigger, its retry time) to when it started.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"dag_id"}),
	}
	reg.MustRegister(m.RunsCreated, m.RunsEnded, m.TriesEnded, m.TaskDuration, m.ScheduleDelay)
	return m
}

func (m *Metrics) runCreated(dagID string, runType RunType) {
	if m != nil {
		m.RunsCreated.WithLabelValues(dagID, string(runType)).Inc()
	}
}

func (m *Metrics) runEnded(dagID string, state RunState) {
	if m != nil {
		m.RunsEnded.WithLabelValues(dagID, string(state)).Inc()
	}
}

func (m *Metrics) tryStarted(dagID string, delay time.Duration) {
	if m != nil {
		m.ScheduleDelay.WithLabelValues(dagID).Observe(max(delay, 0).Seconds())
	}
}

func (m *Metrics) tryEnded(dagID string, state TaskState, d time.Duration) {
	if m != nil {
		m.TriesEnded.WithLabelValues(dagID, string(state)).Inc()
		m.TaskDuration.WithLabelValues(dagID).Observe(d.Seconds())
	}
}

// runStates counts runs by DAG and state in the store on every scrape, so
// the gauge is true whichever scheduler made the runs.
type runStates struct {
	store Store
	desc  *prometheus.Desc
}

// NewRunStateCollector returns a collector of userstream_scheduler_dag_runs
// {dag_id, state}: the runs the store holds in each state. Register it
// beside NewMetrics.
func NewRunStateCollector(st Store) prometheus.Collector {
	return &runStates{store: st, desc: prometheus.NewDesc("userstream_scheduler_dag_runs",
		"DAG runs in the metadata store, by DAG and state (queued, running, success, failed).", []string{"dag_id", "state"}, nil)}
}

func (c *runStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *runStates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dags, err := c.store.ListDAGs(ctx)
	if err != nil {
		return
	}
	for _, d := range dags {
		for _, state := range []RunState{RunQueued, RunRunning, RunSuccess, RunFailed} {
			_, n, err := c.store.ListRuns(ctx, RunFilter{DagID: d.DagID, States: []RunState{state}, Limit: 1})
			if err != nil {
				return
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), d.DagID, string(state))
		}
	}
}
