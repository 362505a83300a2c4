package engines_test

import (
	"strconv"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/engines/enginestest"
)

func cqlSession(t *testing.T, c *engines.Cassandra) *gocql.Session {
	t.Helper()
	sess, err := engines.CassandraSession(c.Addr, 10*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", c.Addr, err)
	}
	t.Cleanup(sess.Close)
	return sess
}

// TestCassandraKillRestart: a row written just before a SIGKILL is there
// after the node is started again on its data by OpenCassandra (what
// scripts/engines.sh restart does from another process): the commit log
// survives a killed process.
func TestCassandraKillRestart(t *testing.T) {
	c := enginestest.StartCassandra(t)
	if v, err := engines.CassandraVersion(t.Context(), c.Addr); err != nil || v[:2] != "5." {
		t.Fatalf("release_version %q, %v: want 5.x", v, err)
	}
	sess := cqlSession(t, c)
	for _, q := range []string{
		"CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"CREATE TABLE k.t (id int PRIMARY KEY, v text)",
	} {
		if err := sess.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range 100 {
		if err := sess.Query("INSERT INTO k.t (id, v) VALUES (?, ?)", i, "v"+strconv.Itoa(i)).Exec(); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	sess.Close()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Process().Alive() {
		t.Fatal("cassandra is alive after Kill")
	}
	again, err := engines.OpenCassandra(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Restart(t.Context()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = again.Close() })
	var n int
	if err := cqlSession(t, again).Query("SELECT count(*) FROM k.t").Scan(&n); err != nil || n != 100 {
		t.Fatalf("after kill and restart: %d rows, err %v; want the 100 written", n, err)
	}
}

func TestStartCassandraRejectsKafkaOptions(t *testing.T) {
	for _, o := range []engines.Option{engines.WithNodes(3), engines.WithZooKeeper()} {
		if _, err := engines.StartCassandra(t.Context(), t.TempDir(), o); err == nil {
			t.Fatal("StartCassandra with a Kafka-only option: no error")
		}
	}
}
