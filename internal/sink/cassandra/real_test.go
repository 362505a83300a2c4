package cassandra_test

import (
	"os"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/cassandra"
	"github.com/userstream/userstream/internal/sink/sinktest"
)

// The real node is started once for the package's tests (or taken from
// USERSTREAM_TEST_CASSANDRA) and killed when they end.
func TestMain(m *testing.M) { os.Exit(enginestest.RunWithCassandra(m)) }

// realURL opens a sink URL for a keyspace of the test's own on the shared
// real Cassandra node.
func realURL(t testing.TB, extra string) string {
	t.Helper()
	addr := enginestest.CassandraAddr(t)
	u := "cassandra://" + addr + "/" + enginestest.Keyspace(t, addr) + "?retry_min=20ms&retry_max=500ms&timeout=10s"
	if extra != "" {
		u += "&" + extra
	}
	return u
}

func openReal(t testing.TB, extra string) *cassandra.Sink {
	t.Helper()
	return open(t, realURL(t, extra))
}

// TestConformanceReal runs the sink contract suite on Apache Cassandra 5.0
// (one node, a keyspace per case). The broken-connection case runs on the
// double (TestConformance) and the node-kill case in chaos/: killing the
// shared node would break the other tests.
func TestConformanceReal(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) sink.Sink { return openReal(t, "") },
		sinktest.TimePrecision(time.Millisecond),
		sinktest.NonAtomic(),
		sinktest.Rejects(badUTF8()),
	)
}
