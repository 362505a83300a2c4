package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestWorkersKilled: two `userstream stream` processes of one group show
// on /workers with their partitions and rows/s while users flow; SIGKILL
// one and, once Kafka drops it (its session timeout), it shows as gone,
// with when, and the other holds every partition. The Spark master's page
// after a worker died.
func TestWorkersKilled(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	const group = "workers-test"
	start := func(name string) *proctest.Proc {
		return proctest.Start(t, name, "stream", "--brokers", strings.Join(f.st.Kafka.Brokers, ","),
			"--schema-registry", f.st.RegistryURL, "--sink", "sqlite:"+filepath.Join(dir, name+".db"), "--metrics-addr", "",
			"--group", group, "--instance-id", name, "--session-timeout", "6s", "--batch-wait", "20ms")
	}
	a, b := start("worker-a"), start("worker-b")

	// Users keep coming, a few every 100 ms, so both workers commit at
	// every sample.
	ctx, stop := context.WithCancel(context.Background())
	produced := make(chan error, 1)
	go func() { produced <- f.produceUntil(ctx, 20, 100*time.Millisecond) }()
	defer func() {
		stop()
		if err := <-produced; err != nil {
			t.Errorf("producing: %v", err)
		}
	}()

	c := f.loggedIn(t, login.ViewerUser, viewerPassword)
	type member struct {
		InstanceID string    `json:"instance_id"`
		Partitions []string  `json:"partitions"`
		RowsPerS   *float64  `json:"rows_per_s"`
		Gone       time.Time `json:"gone"`
		History    [][3]*float64
	}
	workers := func() (map[string]member, int) {
		var page struct {
			Groups []struct {
				Group   string
				Active  int
				Workers []member
			}
		}
		c.getJSON("/api/ui/workers", &page)
		for _, g := range page.Groups {
			if g.Group == group {
				out := map[string]member{}
				for _, w := range g.Workers {
					out[w.InstanceID] = w
				}
				return out, g.Active
			}
		}
		return nil, 0
	}
	testwait.For(t, 90*time.Second, "both workers active, with partitions and rows/s > 0", func() (string, bool) {
		if a.Exited() || b.Exited() {
			t.Fatalf("a worker exited:\n%s\n%s", proctest.Tail(a.Output(), 2000), proctest.Tail(b.Output(), 2000))
		}
		ws, active := workers()
		ok := active == 2
		for _, name := range []string{"worker-a", "worker-b"} {
			w := ws[name]
			ok = ok && len(w.Partitions) > 0 && w.RowsPerS != nil && *w.RowsPerS > 0 && w.Gone.IsZero() && len(w.History) > 1
		}
		return fmt.Sprintf("%d active: %+v", active, ws), ok
	}, testwait.Every(250*time.Millisecond))
	page := c.get("/workers")
	if strings.Count(page.body, `<svg class="spark rate"`) < 2 {
		t.Errorf("the workers page draws no rows/s line for the two workers: %.3000s", page.body)
	}

	killed := time.Now()
	a.Kill(t)
	gone := testwait.For(t, 60*time.Second, "worker-a gone, worker-b holding all 3 partitions", func() (string, bool) {
		ws, active := workers()
		wa, wb := ws["worker-a"], ws["worker-b"]
		return fmt.Sprintf("%d active: %+v", active, ws), active == 1 && !wa.Gone.IsZero() && wb.Gone.IsZero() && len(wb.Partitions) == 3
	}, testwait.Every(250*time.Millisecond))
	ws, _ := workers()
	if at := ws["worker-a"].Gone; at.Before(killed) || at.After(time.Now()) {
		t.Errorf("worker-a gone at %v, want after its kill at %v: %s", at, killed, gone)
	}
	page = c.get("/workers")
	if !strings.Contains(page.body, `<tr class="gone">`) || !strings.Contains(page.body, "gone at ") {
		t.Errorf("the workers page does not show the killed worker as gone: %.3000s", page.body)
	}
	b.Signal(syscall.SIGTERM)
	b.Wait(t, 30*time.Second)
}

// produceUntil produces n users of the built-in API every interval until
// ctx ends.
func (f *fixture) produceUntil(ctx context.Context, n int, every time.Duration) error {
	src, err := f.st.Source()
	if err != nil {
		return err
	}
	prod, err := f.st.Producer(ctx)
	if err != nil {
		return err
	}
	defer prod.Close()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := ingest.Run(ctx, src, prod, f.st.Encoder, ingest.Config{Users: n, BatchSize: n, SourceName: "builtin"}); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
