package chaos_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestDevKill: `userstream dev` is SIGKILLed while a producer of its own
// writes to it, and started again at once on its data dir. On the embedded
// broker (the default) dev is its own broker, registry, Connect worker and
// SQLite sink in one process; on a real Kafka (USERSTREAM_TEST_BROKER) it
// runs with --brokers and --schema-registry against the cluster, which
// outlives it. Nothing it holds blocks the restart (the data dir's and the
// sink's locks die with the process; its connector's task takes its
// instance id back, so the group does not wait for the dead member): it is
// ready and storing again within 2 s, and once the produce ends the sink
// holds every acknowledged user once.
func TestDevKill(t *testing.T) {
	skipShort(t)
	var s *proctest.Stack
	var brokerArgs []string
	if enginestest.BrokerKind(t) == enginestest.Embedded {
		api := proctest.FreeAddr(t)
		proctest.WaitListening(t, proctest.Start(t, "api", "api", "--addr", api), api)
		s = &proctest.Stack{Kafka: proctest.FreeAddr(t), Registry: proctest.FreeAddr(t), API: api, Dir: t.TempDir()}
		brokerArgs = []string{"--kafka-addr", s.Kafka, "--registry-addr", s.Registry}
	} else {
		s = proctest.StartStack(t)
		brokerArgs = []string{"--brokers", s.Kafka, "--schema-registry", s.RegistryURL()}
	}
	s.Sink = "sqlite:" + filepath.Join(s.Dir, "users.db") // dev's sink in its data dir
	args := append([]string{"dev", "--data-dir", s.Dir, "--api-addr", proctest.FreeAddr(t), "--metrics-addr", proctest.FreeAddr(t),
		"--web-addr", proctest.FreeAddr(t), "--connect-addr", proctest.FreeAddr(t), "--schedule", "none"}, brokerArgs...)
	env := []string{"USERSTREAM_ADMIN_PASSWORD=chaos-password-1"}
	ready := func(p *proctest.Proc) {
		t.Helper()
		testwait.For(t, 60*time.Second, p.Name+" running", func() (string, bool) {
			if p.Exited() {
				t.Fatalf("%s exited:\n%s", p.Name, p.Output())
			}
			return proctest.Tail(p.Output(), 300), strings.Contains(p.Output(), "userstream dev is running")
		}, testwait.Every(10*time.Millisecond))
	}
	dev := proctest.StartEnv(t, "dev-1", env, args...)
	ready(dev)
	n, rate := size(30_000, 100_000), size(3000, 5000)
	prod := produceUsers(t, s, n, rate)
	waitAbove(t, s.Sink, n/4, 60*time.Second)
	dev.Kill(t)
	before := stored(t, s.Sink)
	restart := time.Now()
	dev = proctest.StartEnv(t, "dev-2", env, args...)
	ready(dev)
	readyAfter := time.Since(restart)
	testwait.For(t, 30*time.Second, "dev-2 storing", func() (int64, bool) {
		n := stored(t, s.Sink)
		return n, n > before
	}, testwait.Every(10*time.Millisecond))
	storingAfter := time.Since(restart)
	if storingAfter > 2*time.Second {
		t.Errorf("dev stored again %.1fs after its restart (ready after %.1fs), want within 2 s", storingAfter.Seconds(), readyAfter.Seconds())
	}
	converge(t, s, prod, s.Sink, 0, fmt.Sprintf("dev SIGKILLed at %d stored, restarted at once: ready %.2fs, storing %.2fs after the restart",
		before, readyAfter.Seconds(), storingAfter.Seconds()))
}

// stored counts the SQLite sink's rows directly: quicker than a `users
// count` process, for timings under a second.
func stored(t *testing.T, sinkURL string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(sinkURL, "sqlite:")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM created_users`).Scan(&n); err != nil && !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("count: %v", err)
	}
	return n
}
