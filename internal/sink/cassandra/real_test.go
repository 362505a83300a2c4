package cassandra_test

import (
	"errors"
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

// TestReadOnlyMissingTableReal: a read-only open of a keyspace that holds
// no users table yet (none, then the keyspace without the table) fails
// with sink.ErrNoTable, as the other backends do, so `users count` and the
// Connect tests can tell "nothing stored yet" from a failure.
func TestReadOnlyMissingTableReal(t *testing.T) {
	u := realURL(t, "")
	if _, err := cassandra.Open(t.Context(), u, cassandra.ReadOnly()); !errors.Is(err, sink.ErrNoTable) {
		t.Fatalf("read-only open of a missing keyspace = %v; want sink.ErrNoTable", err)
	}
	s := open(t, u) // creates the schema
	if err := s.Upsert(t.Context(), sinktest.Records(0, 1)); err != nil {
		t.Fatal(err)
	}
	ro, err := cassandra.Open(t.Context(), u, cassandra.ReadOnly())
	if err != nil {
		t.Fatalf("read-only open of the created table: %v", err)
	}
	defer ro.Close()
	if n, err := ro.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

// TestDataCenterDefaultReplicationReal: with dc set and no replication
// given, the keyspace gets as many replicas as the data centre has nodes
// (one here), not the default three that would make every LOCAL_QUORUM
// write unavailable on a one-node cluster (what the real node answered).
func TestDataCenterDefaultReplicationReal(t *testing.T) {
	s := openReal(t, "dc=datacenter1")
	if err := s.Upsert(t.Context(), sinktest.Records(0, 10)); err != nil {
		t.Fatalf("Upsert at LOCAL_QUORUM in a one-node datacenter1: %v", err)
	}
	if n, err := s.Count(t.Context()); err != nil || n != 10 {
		t.Fatalf("Count = %d, %v; want 10", n, err)
	}
}
