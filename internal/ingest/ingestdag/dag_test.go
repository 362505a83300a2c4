package ingestdag_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
)

// flakySource fails every request from its failFrom-th on, until healed
// (by the test, or by itself once healAfter requests have failed).
type flakySource struct {
	ingest.Source
	calls, failFrom, failed, healAfter atomic.Int64
	healed                             atomic.Bool
}

func (f *flakySource) Get(ctx context.Context, p randomuser.Params) (randomuser.Response, error) {
	n := f.calls.Add(1)
	if !f.healed.Load() && f.failFrom.Load() > 0 && n >= f.failFrom.Load() {
		if h := f.healAfter.Load(); h > 0 && f.failed.Add(1) >= h {
			f.healed.Store(true)
		}
		return randomuser.Response{}, errors.New("HTTP 503 after 4 attempts (scripted)")
	}
	return f.Source.Get(ctx, p)
}

// start starts an embedded stack on dir, closed when the test ends.
func start(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	st, err := stack.Start(t.Context(), stack.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// pipeline is a stack with a scheduler running user_automation (500 users
// a run, no schedule) and a stream into its sink.
type pipeline struct {
	st    *stack.Stack
	sched *scheduler.Scheduler
	meta  scheduler.Store
	src   *flakySource
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	dir := t.TempDir()
	st := start(t, dir)
	api, err := st.Source()
	if err != nil {
		t.Fatal(err)
	}
	src := &flakySource{Source: api}
	sp := ingestdag.UserAutomation()
	sp.Schedule, sp.UsersPerRun, sp.RunDuration, sp.RetryDelay, sp.RetryExponentialBackoff = "none", 500, "", "10ms", false
	d, err := sp.Build(ingestdag.Producing{Source: src, SourceName: "test", Encoder: st.Encoder, BatchSize: 100,
		Producer: func(ctx context.Context) (*kgo.Client, error) { return st.Producer(ctx) }})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	s, err := scheduler.New(scheduler.Config{Store: meta, DAGs: []*scheduler.DAG{d}, TickEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.RunStream(ctx, stream.Config{BatchWait: 20 * time.Millisecond}) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = s.Stop(sctx)
	})
	return &pipeline{st: st, sched: s, meta: meta, src: src}
}

var logical = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func (p *pipeline) runToSuccess(t *testing.T, runID string) {
	t.Helper()
	testwait.For(t, 60*time.Second, "run "+runID+" success", func() (string, bool) {
		r, err := p.meta.GetRun(t.Context(), ingestdag.UserAutomationID, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == scheduler.RunFailed {
			t.Fatalf("run %s failed", runID)
		}
		return string(r.State), r.State == scheduler.RunSuccess
	})
}

// drained waits until the stream's group has committed every message of
// the topic (lag 0): the sink holds whatever the runs produced.
func (p *pipeline) drained(t *testing.T) {
	t.Helper()
	cl, err := p.st.Producer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testwait.For(t, 30*time.Second, "the stream's lag on "+broker.Topic+" at 0", func() (any, bool) {
		lags, err := adm.Lag(t.Context(), stream.DefaultGroup)
		if err != nil {
			return err, false
		}
		l := lags[stream.DefaultGroup]
		if err := l.Error(); err != nil {
			return err, false
		}
		_, has := l.Lag[broker.Topic]
		return l.Lag.Total(), has && l.Lag.Total() == 0
	}, testwait.Every(100*time.Millisecond))
}

// ids waits until the sink holds n users and returns their ids, sorted.
func (p *pipeline) ids(t *testing.T, n int) []string {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("%d users in the sink", n), func() (int64, bool) {
		c, err := p.st.Sink.Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c > int64(n) {
			t.Fatalf("the sink holds %d users, more than %d", c, n)
		}
		return c, c == int64(n)
	})
	rs, err := p.st.Sink.Recent(t.Context(), n+10)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

// TestRetriedAndClearedRunsStoreTheSameRows: a run whose first try fails
// midway and is retried, and a run cleared and run again, leave the sink
// with exactly the rows of one clean run of the same logical date: retries
// and clears never add users.
func TestRetriedAndClearedRunsStoreTheSameRows(t *testing.T) {
	clean := newPipeline(t)
	run, err := clean.sched.Service().Trigger(t.Context(), ingestdag.UserAutomationID, nil, logical, "")
	if err != nil {
		t.Fatal(err)
	}
	clean.runToSuccess(t, run.RunID)
	want := clean.ids(t, 500)

	// Cleared and run again: the same 500.
	if _, err := clean.sched.Service().Clear(t.Context(), ingestdag.UserAutomationID, run.RunID); err != nil {
		t.Fatal(err)
	}
	clean.runToSuccess(t, run.RunID)
	clean.drained(t) // the sink holds whatever the second run produced
	if got := clean.ids(t, 500); !slices.Equal(got, want) {
		t.Fatal("the cleared run stored other users than the clean run")
	}
	tries, _ := clean.meta.ListTries(t.Context(), ingestdag.UserAutomationID, run.RunID)
	if len(tries) != 2 {
		t.Fatalf("%d tries after the clear, want 2", len(tries))
	}

	// A first try that fails after 3 of its 5 requests, then a retry.
	flaky := newPipeline(t)
	flaky.src.failFrom.Store(4)
	flaky.src.healAfter.Store(1) // the failing request heals it: the retry succeeds
	run2, err := flaky.sched.Service().Trigger(t.Context(), ingestdag.UserAutomationID, nil, logical, "")
	if err != nil {
		t.Fatal(err)
	}
	flaky.runToSuccess(t, run2.RunID)
	if got := flaky.ids(t, 500); !slices.Equal(got, want) {
		t.Fatal("the retried run stored other users than the clean run")
	}
	tries, _ = flaky.meta.ListTries(t.Context(), ingestdag.UserAutomationID, run2.RunID)
	if len(tries) < 2 || tries[0].State != scheduler.TaskUpForRetry {
		t.Fatalf("tries %+v: the first try should have failed and been retried", tries)
	}
	log, _ := flaky.meta.GetLog(t.Context(), ingestdag.UserAutomationID, run2.RunID, ingestdag.UserAutomationTask, 1)
	if !strings.Contains(log, "503") {
		t.Errorf("the failed try's log does not say why:\n%s", log)
	}
	// Every record carries the run id.
	rs, _ := flaky.st.Sink.Recent(t.Context(), 1)
	if rs[0].RunID != run2.RunID {
		t.Errorf("record run_id %q, want %q", rs[0].RunID, run2.RunID)
	}
}

// TestDAGFile reads DAGs from YAML and JSON and refuses bad ones, naming
// the DAG and the field.
func TestDAGFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("dags.yaml", `
dags:
  - dag_id: users_fr
    schedule: "@hourly"
    start_date: 2026-01-01
    timezone: Europe/Paris
    users_per_run: 200
    nat: [fr]
    retries: 3
    retry_delay: 1m
`)
	specs, err := ingestdag.LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	d, err := specs[0].Build(ingestdag.Producing{})
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	if d.DagID != "users_fr" || d.DefaultArgs.Retries != 3 || d.DefaultArgs.RetryDelay != time.Minute ||
		!d.StartDate.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, paris)) || d.Timezone.String() != "Europe/Paris" {
		t.Errorf("built %+v", d)
	}
	for name, tt := range map[string]struct{ file, text, want string }{
		"unknown key":      {"a.yaml", "- dag_id: x\n  schedul: '@daily'\n  users_per_run: 1\n", `DAG 1 ("x"): json: unknown field "schedul"`},
		"bad schedule":     {"b.json", `[{"dag_id": "y", "schedule": "@fortnightly", "users_per_run": 1}]`, `DAG "y": schedule`},
		"bad nat":          {"c.yaml", "- dag_id: z\n  schedule: none\n  users_per_run: 1\n  nat: [xx]\n", `DAG "z": nat`},
		"unbounded":        {"d.yaml", "- dag_id: w\n  schedule: none\n", `DAG "w": users_per_run`},
		"bad duration":     {"e.yaml", "- dag_id: v\n  schedule: none\n  run_duration: soon\n", `DAG "v": run_duration`},
		"no id":            {"f.yaml", "- schedule: none\n", `DAG 1: dag_id: required`},
		"bad time zone":    {"g.yaml", "- dag_id: u\n  schedule: none\n  users_per_run: 1\n  timezone: Mars/Olympus\n", `DAG "u": timezone`},
		"end before start": {"h.yaml", "- dag_id: s\n  schedule: none\n  users_per_run: 1\n  start_date: 2026-02-01\n  end_date: 2026-01-01\n", `DAG "s": end_date`},
	} {
		specs, err := ingestdag.LoadFile(write(tt.file, tt.text))
		if err == nil {
			_, err = specs[0].Build(ingestdag.Producing{})
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tt.want)
		}
	}
}
