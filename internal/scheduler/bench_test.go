package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/postgres"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/testwait"
)

// BenchmarkSchedulingOverhead measures what the scheduler costs, with a
// no-op task: "throughput" triggers 300 runs at once and reports runs/s
// started and finished (and the delay, which is then mostly queueing
// behind max_active_runs 16); "idle" triggers 30 runs one after another,
// each once the last is done, and reports the delay from a run being due
// (triggered) to its try starting, p50 and p99. The metadata store is
// SQLite, and PostgreSQL when USERSTREAM_TEST_POSTGRES names one.
//
//	go test -run '^$' -bench SchedulingOverhead -benchtime 1x ./internal/scheduler/
func BenchmarkSchedulingOverhead(b *testing.B) {
	stores := map[string]func(b *testing.B) scheduler.Store{
		"sqlite": func(b *testing.B) scheduler.Store {
			st, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "meta.db"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	if base := os.Getenv("USERSTREAM_TEST_POSTGRES"); base != "" {
		stores["postgres"] = func(b *testing.B) scheduler.Store {
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			st, err := postgres.Open(context.Background(), base+sep+"schema=bench_"+strconv.FormatInt(time.Now().UnixNano(), 36))
			if err != nil {
				b.Fatal(err)
			}
			return st
		}
	}
	for name, open := range stores {
		for _, mode := range []string{"throughput", "idle"} {
			b.Run(name+"/"+mode, func(b *testing.B) { benchSchedule(b, open, mode) })
		}
	}
}

func benchSchedule(b *testing.B, open func(b *testing.B) scheduler.Store, mode string) {
	runs := 300
	if mode == "idle" {
		runs = 30
	}
	for range b.N {
		st := open(b)
		d := dag("noop", func(context.Context, scheduler.TaskContext) error { return nil })
		d.MaxActiveRuns = 16
		s, err := scheduler.New(scheduler.Config{Store: st, DAGs: []*scheduler.DAG{d}, TickEvery: 100 * time.Millisecond, Workers: 8})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		// Not timed: River electing its leader, which runs the ticks.
		testwait.For(b, time.Minute, "the first tick", func() (time.Time, bool) {
			return s.LastTick(), !s.LastTick().IsZero()
		}, testwait.Every(10*time.Millisecond))
		b.ResetTimer()
		start := time.Now()
		for i := range runs {
			r, err := s.Service().Trigger(ctx, "noop", nil, start.Add(-time.Duration(i+1)*time.Second), "")
			if err != nil {
				b.Fatal(err)
			}
			if mode == "idle" {
				testwait.For(b, time.Minute, "run "+r.RunID+" success", func() (string, bool) {
					got, err := st.GetRun(ctx, "noop", r.RunID)
					if err != nil {
						b.Fatal(err)
					}
					return string(got.State), got.State == scheduler.RunSuccess
				}, testwait.Every(5*time.Millisecond))
			}
		}
		testwait.For(b, 5*time.Minute, fmt.Sprintf("%d successful runs", runs), func() (int, bool) {
			_, done, err := st.ListRuns(ctx, scheduler.RunFilter{DagID: "noop", States: []scheduler.RunState{scheduler.RunSuccess}, Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			return done, done == runs
		}, testwait.Every(20*time.Millisecond))
		elapsed := time.Since(start)
		b.StopTimer()
		var delays []time.Duration
		all, _, _ := st.ListRuns(ctx, scheduler.RunFilter{DagID: "noop"})
		for _, r := range all {
			tries, _ := st.ListTries(ctx, "noop", r.RunID)
			for _, t := range tries {
				delays = append(delays, t.StartDate.Sub(r.QueuedAt))
			}
		}
		slices.Sort(delays)
		b.ReportMetric(float64(runs)/elapsed.Seconds(), "runs/s")
		b.ReportMetric(delays[len(delays)/2].Seconds()*1000, "delay-p50-ms")
		b.ReportMetric(delays[len(delays)*99/100].Seconds()*1000, "delay-p99-ms")
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = s.Stop(sctx)
		cancel()
		st.Close()
	}
}
