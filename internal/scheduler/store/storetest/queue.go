package storetest

// The River queue case: a job inserted through the store runs.

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/userstream/userstream/internal/testwait"
)

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "storetest_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	got chan int
}

func (w *pingWorker) Work(ctx context.Context, job *river.Job[pingArgs]) error {
	select {
	case w.got <- job.Args.N:
	case <-ctx.Done():
	}
	return nil
}

func testQueue(t *testing.T, h *harness) {
	worker := &pingWorker{got: make(chan int, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	q, err := h.Queue(&river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	// The client's own context outlives the test's calls; Stop ends it.
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q.Stop(ctx) //nolint:errcheck // the case has failed already
		}
	})

	res, err := q.Insert(t.Context(), pingArgs{N: 42}, nil)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	select {
	case n := <-worker.got:
		if n != 42 {
			t.Errorf("the worker got %d, want 42", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not run within 30s")
	}
	// Completion is recorded asynchronously after Work returns.
	testwait.For(t, 30*time.Second, "the job completed after it ran", func() (rivertype.JobState, bool) {
		job, err := q.JobGet(t.Context(), res.Job.ID)
		if err != nil {
			t.Fatalf("JobGet: %v", err)
		}
		return job.State, job.State == rivertype.JobStateCompleted
	}, testwait.Every(20*time.Millisecond))

	later, err := q.Insert(t.Context(), pingArgs{N: 7}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("Insert (scheduled): %v", err)
	}
	job, err := q.JobCancel(t.Context(), later.Job.ID)
	if err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if job.State != rivertype.JobStateCancelled {
		t.Errorf("a cancelled scheduled job is %s, want cancelled", job.State)
	}
	if _, err := q.JobGet(t.Context(), later.Job.ID+1000); !errors.Is(err, river.ErrNotFound) {
		t.Errorf("JobGet(unknown id) = %v, want river.ErrNotFound", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stopped = true
	if err := q.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// The store works on after its queue stopped.
	h.createRun(newRun("a", 0))
}
