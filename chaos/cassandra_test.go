package chaos_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestCassandraKilled: a real Cassandra 5.0 node is SIGKILLed mid-stream,
// stays down 15 s and is started again on its data. /healthz says the sink
// is failing while it is down; the stream resumes within 5 s of the node
// answering CQL again; every acknowledged user is stored once (created_users'
// primary key is the id, so a replay overwrites instead of duplicating, and
// the count must equal what produce acknowledged).
func TestCassandraKilled(t *testing.T) {
	skipShort(t)
	node := enginestest.StartCassandra(t)
	s := proctest.StartStack(t)
	sinkURL := "cassandra://" + node.Addr + "/spark_streams?reconnect_interval=500ms&recreate_after=2s&retry_max=1s"
	metrics := proctest.FreeAddr(t)
	proctest.Start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", sinkURL, "--metrics-addr", metrics, "--unhealthy-after", "5s")
	// The rates are what one test node on two shared cores absorbs (a
	// few hundred to a thousand users/s): above it the backlog, not the
	// fault, would set the convergence time.
	n, rate := size(20_000, 100_000), size(1000, 600)
	prod := produceUsers(t, s, n, rate)
	before := waitAbove(t, sinkURL, n/5, 120*time.Second)
	if err := node.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	unhealthy := ""
	for time.Since(killed) < 15*time.Second {
		if code, body := healthz(t, metrics); code == 503 {
			unhealthy = body
		}
		time.Sleep(500 * time.Millisecond) // paces the sampling through the outage
	}
	if !strings.Contains(unhealthy, "sink upsert failing") {
		t.Errorf("/healthz never said the sink is failing while Cassandra was down (last 503 body %q)", unhealthy)
	}
	restartStart := time.Now()
	if err := node.Restart(t.Context()); err != nil {
		t.Fatalf("restart Cassandra on its data: %v", err)
	}
	back := time.Now()
	restartTook := back.Sub(restartStart)
	resumed := waitAbove(t, sinkURL, before, 60*time.Second)
	resumeAfter := time.Since(back)
	if resumeAfter > 5*time.Second+3*time.Second { // 3 s: one `users count` process on a node just up
		t.Errorf("the stream resumed %.1fs after Cassandra answered again, want within 5 s", resumeAfter.Seconds())
	}
	// Healthy again once a whole batch has gone through after the return.
	testwait.For(t, 10*time.Second, "/healthz 200 after Cassandra came back", func() (string, bool) {
		code, body := healthz(t, metrics)
		return fmt.Sprintf("%d %q", code, body), code == 200
	})
	converge(t, s, prod, sinkURL, time.Duration(size(60, 120))*time.Second, fmt.Sprintf("Cassandra SIGKILLed, down 15 s, restarted on its data in %.1fs; /healthz 503 while down; rows moved again %.1fs after it answered (%d -> %d)",
		restartTook.Seconds(), resumeAfter.Seconds(), before, resumed))
}
