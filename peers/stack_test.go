package peers

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/compat/spark"
	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/testwait"
)

// devRun is what one `userstream dev` did: from its start, its first
// stored user and its run's last, and its peak RSS.
type devRun struct {
	first, all time.Duration
	users      int
	rssMiB     float64
}

// runDev starts `userstream dev` in a data dir of its own, all its
// listeners on free ports, with one run of users users (schedule @once)
// and extra flags, waits until its SQLite sink holds them all, and stops
// it.
func runDev(t *testing.T, users int, extra ...string) devRun {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"dev", "--data-dir", dir, "--kafka-addr", proctest.FreeAddr(t),
		"--registry-addr", proctest.FreeAddr(t), "--api-addr", proctest.FreeAddr(t), "--web-addr", proctest.FreeAddr(t),
		"--connect-addr", proctest.FreeAddr(t), "--metrics-addr", "", "--schedule", "@once",
		"--users-per-run", strconv.Itoa(users), "--status-every", "1h"}, extra...)
	begin := time.Now()
	p := proctest.StartEnv(t, "dev", []string{"USERSTREAM_ADMIN_PASSWORD=" + peersPassword}, args...)
	peak := rssWatch(func() []int { return []int{p.Pid()} })
	t.Cleanup(func() { peak() })
	first, all := waitSQLite(t, filepath.Join(dir, "users.db"), users, begin, p.Exited)
	r := devRun{first: first, all: all, users: users, rssMiB: peak()}
	p.Signal(15)
	p.Wait(t, time.Minute)
	t.Logf("dev %v: first stored user at %s, all %d at %s; peak RSS %.0f MiB", extra, first, users, all, r.rssMiB)
	return r
}

// waitSQLite polls the users SQLite file holds (read-only, in process:
// no command per poll to load the machine) until it holds want.
func waitSQLite(t *testing.T, path string, want int, begin time.Time, exited func() bool) (first, all time.Duration) {
	t.Helper()
	testwait.For(t, 15*time.Minute, strconv.Itoa(want)+" users in "+path, func() (int64, bool) {
		if exited() {
			t.Fatalf("dev exited before %s held %d users", path, want)
		}
		if _, err := os.Stat(path); err != nil {
			return 0, false
		}
		s, err := sinks.Open(t.Context(), "sqlite:"+path, sinks.ReadOnly())
		if err != nil {
			return 0, false // no table yet
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		n, _ := s.Count(ctx)
		if n > 0 && first == 0 {
			first = time.Since(begin)
		}
		return n, n >= int64(want)
	}, testwait.Every(100*time.Millisecond))
	return first, time.Since(begin)
}

// TestDevOnKafka: `userstream dev` on its embedded broker and `dev
// --brokers` on Apache Kafka 4.4 (a node of its own, empty: dev's Avro
// users must not meet the other tests' JSON ones; started before and not
// counted), one run of USERSTREAM_PEERS_DEV_USERS users (100,000; 10,000
// quick) end to end into dev's SQLite: time from start to the first stored
// user, users/s from the first to the last, peak RSS of dev.
func TestDevOnKafka(t *testing.T) {
	quick := measured(t)
	users := size(t, "USERSTREAM_PEERS_DEV_USERS", quick, 100000, 10000)
	var emb, onKafka devRun
	t.Run("embedded", func(t *testing.T) { emb = runDev(t, users) })
	t.Run("Apache Kafka", func(t *testing.T) { onKafka = runDev(t, users, "--brokers", startKafka(t).Bootstrap()) })
	if t.Failed() {
		return
	}
	rate := func(r devRun) float64 { return float64(r.users) / max(r.all-r.first, 100*time.Millisecond).Seconds() }
	peer := "dev --brokers Apache Kafka 4.4.0 (broker not counted)"
	record(t, "dev end to end: time from start to first stored user", peer, "s", emb.first.Seconds(), onKafka.first.Seconds(), true)
	record(t, "dev end to end: users/s", peer, "users/s", rate(emb), rate(onKafka), false)
}

// TestWholeStack: the original's set of engines against `userstream dev`,
// in a reduced but honest form. Started at once: Apache Kafka 4.4 (one
// KRaft node, the JVM's defaults), `userstream registry` for the Schema
// Registry, Apache Kafka Connect 4.3.1 (one distributed worker, idle: the
// original ran no connector), the original's Spark job (default trigger)
// into PostgreSQL, and, once Kafka is ready, `userstream produce` of
// USERSTREAM_PEERS_STACK_USERS users (10,000; 1,000 quick) in JSON,
// standing for the Airflow DAG's task (Airflow itself is not started:
// TestSchedulerVsAirflow measures it). Against: `userstream dev` storing
// the same number of users in one run. Measured: time from start to the
// first stored user, and the sum of every process's peak RSS by the time
// all are stored.
func TestWholeStack(t *testing.T) {
	quick := measured(t)
	users := size(t, "USERSTREAM_PEERS_STACK_USERS", quick, 10000, 1000)
	py := spark.Python(t)
	pg := spark.PostgresURL(t)
	jars := spark.Jars(t)
	if err := engines.Available(); err != nil {
		t.Skipf("no Apache Kafka here: %v", err)
	}
	ours := runDev(t, users)

	table := spark.CreateTable(t, pg, "stored_at timestamptz NOT NULL DEFAULT now()")
	var mu sync.Mutex // pids grows while rssWatch reads it
	var pids []int
	addPid := func(p int) { mu.Lock(); pids = append(pids, p); mu.Unlock() }
	begin := time.Now()
	k := startKafka(t)
	addPid(k.Processes()[0].Pid)
	peak := rssWatch(func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(pids) })
	t.Cleanup(func() { peak() })
	regAddr := proctest.FreeAddr(t)
	reg := proctest.Start(t, "registry", "registry", "--addr", regAddr, "--data-dir", filepath.Join(t.TempDir(), "schemas"))
	addPid(reg.Pid())
	type started struct {
		c   *engines.Connect
		err error
	}
	connect := make(chan started, 1)
	go func() {
		// t.Context ends when the test does, so a start still under way then stops.
		c, err := engines.StartConnect(t.Context(), t.TempDir(), k.Bootstrap(), engines.WithStartTimeout(5*time.Minute))
		if err == nil {
			addPid(c.Process().Pid)
		}
		connect <- started{c, err}
	}()
	var worker *started
	t.Cleanup(func() {
		if worker == nil {
			s := <-connect
			worker = &s
		}
		if worker.c != nil {
			_ = worker.c.Close()
		}
	})
	pid, check, _ := startSpark(t, py, pg, jars, k.Bootstrap(), table, 0)
	addPid(pid)
	produceJSON(t, k.Bootstrap(), users, 0)
	first, all := fill(t, pg, table, users, begin, check)
	st := <-connect
	if worker = &st; st.err != nil {
		t.Fatalf("start Apache Kafka Connect: %v", st.err)
	}
	total := peak()
	t.Logf("original's stack: first stored user at %s, all %d at %s; peak RSS %.0f MiB", first, users, all, total)
	peer := "Kafka 4.4 + registry + Connect 4.3.1 (idle) + Spark 4.0.0 + produce"
	record(t, "whole stack: time from start to first stored user", peer, "s", ours.first.Seconds(), first.Seconds(), true)
	record(t, "whole stack: total peak RSS", peer, "MiB", ours.rssMiB, total, true)
}
