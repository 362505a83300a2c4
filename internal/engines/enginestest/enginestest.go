// Package enginestest starts the real engines of package engines for a
// test and stops them when it ends, failed or not.
package enginestest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/engines"
)

// Broker kinds a test suite can run on, chosen by USERSTREAM_TEST_BROKER.
const (
	Embedded  = "embedded" // userstream's embedded broker (the default)
	Kafka     = "kafka"    // Apache Kafka 4, KRaft, one node
	Kafka3    = "kafka3"   // Apache Kafka 4, KRaft, three nodes
	KafkaZK   = "kafka-zk" // Apache Kafka 3.9 on ZooKeeper, one node
	BrokerEnv = "USERSTREAM_TEST_BROKER"
)

// BrokerKind is the broker the end-to-end suites run on: the value of
// USERSTREAM_TEST_BROKER, or Embedded when it is unset. An unknown value
// fails the test, since a typo would otherwise run the embedded broker and
// pass for real Kafka.
func BrokerKind(t testing.TB) string {
	t.Helper()
	switch k := os.Getenv(BrokerEnv); k {
	case "", Embedded:
		return Embedded
	case Kafka, Kafka3, KafkaZK:
		return k
	default:
		t.Fatalf("%s=%q: want %s, %s, %s or %s", BrokerEnv, k, Embedded, Kafka, Kafka3, KafkaZK)
		return ""
	}
}

// KafkaOptions are the options that start the cluster of a broker kind
// (nil for Embedded).
func KafkaOptions(kind string) []engines.KafkaOption {
	switch kind {
	case Kafka:
		return []engines.KafkaOption{}
	case Kafka3:
		return []engines.KafkaOption{engines.WithNodes(3)}
	case KafkaZK:
		return []engines.KafkaOption{engines.WithZooKeeper()}
	}
	return nil
}

// StartKafka starts a Kafka cluster in a temporary directory for the test
// and kills it when the test ends. It skips the test, saying why, when java
// or mvn is missing (no engine can run here); any other failure to start
// fails the test with the engine's log.
func StartKafka(t testing.TB, opts ...engines.KafkaOption) *engines.Kafka {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no real Kafka here: %v", err)
	}
	dir := t.TempDir()
	if os.Getenv("USERSTREAM_ENGINES_KEEP") != "" {
		// For a post-mortem: the cluster's data and logs stay after the test.
		var err error
		if dir, err = os.MkdirTemp("", "enginestest-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("engines: data and logs kept in %s (USERSTREAM_ENGINES_KEEP)", dir)
	}
	ctx := context.Background()
	if tc, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tc.Context()
	}
	opts = append([]engines.KafkaOption{engines.WithJVMOptions(engines.QuickStartJVM...),
		engines.WithStartTimeout(3 * time.Minute)}, opts...)
	k, err := engines.StartKafka(ctx, dir, opts...)
	if err != nil {
		t.Fatalf("start Apache Kafka: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range k.Processes() {
				t.Logf("--- %s log (%s):\n%s", p.Name, p.Log, p.LogTail(3000))
			}
		}
		if err := k.Close(); err != nil {
			t.Errorf("stop Apache Kafka: %v", err)
		}
	})
	return k
}

// StartCassandra starts a one-node Cassandra in a temporary directory for
// the test, on a free port, and kills it when the test ends. It skips the
// test, saying why, when java or mvn is missing; any other failure to
// start fails the test with the node's log.
func StartCassandra(t testing.TB, opts ...engines.Option) *engines.Cassandra {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no real Cassandra here: %v", err)
	}
	ctx := context.Background()
	if tc, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tc.Context()
	}
	opts = append([]engines.Option{engines.WithJVMOptions(engines.QuickStartJVM...)}, opts...)
	c, err := engines.StartCassandra(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("start Apache Cassandra: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			p := c.Process()
			t.Logf("--- %s log (%s):\n%s", p.Name, p.Log, p.LogTail(3000))
		}
		if err := c.Close(); err != nil {
			t.Errorf("stop Apache Cassandra: %v", err)
		}
	})
	return c
}

// StartConnect starts an Apache Kafka Connect worker (distributed, 4.x)
// against the Kafka cluster at bootstrap in a temporary directory for the
// test, and kills it when the test ends. It skips the test, saying why,
// when java or mvn is missing; any other failure to start fails the test
// with the worker's log.
func StartConnect(t testing.TB, bootstrap string, opts ...engines.Option) *engines.Connect {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no Kafka Connect here: %v", err)
	}
	ctx := context.Background()
	if tc, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tc.Context()
	}
	opts = append([]engines.Option{engines.WithJVMOptions(engines.QuickStartJVM...)}, opts...)
	c, err := engines.StartConnect(ctx, t.TempDir(), bootstrap, opts...)
	if err != nil {
		t.Fatalf("start Apache Kafka Connect: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			p := c.Process()
			t.Logf("--- %s log (%s):\n%s", p.Name, p.Log, p.LogTail(3000))
		}
		if err := c.Close(); err != nil {
			t.Errorf("stop Apache Kafka Connect: %v", err)
		}
	})
	return c
}

// CassandraEnv names a running Cassandra node (host:port of CQL) that the
// tests of every package share; scripts/test.sh starts one and sets it.
// Unset, each test binary starts its own node on first use.
const CassandraEnv = "USERSTREAM_TEST_CASSANDRA"

var shared struct {
	once sync.Once
	node *engines.Cassandra
	addr string
	err  error
	seq  atomic.Int64
}

// CassandraAddr returns the host:port of a Cassandra node the test binary's
// tests share: $USERSTREAM_TEST_CASSANDRA when set, else one node started
// on the first call (one start per test binary, not per test; it dies with
// the binary, and RunWithCassandra kills it when the tests end). Tests
// isolate themselves with a keyspace each (Keyspace). It skips when java
// or mvn is missing and the variable is unset.
func CassandraAddr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(CassandraEnv); a != "" {
		return a
	}
	if err := engines.Available(); err != nil {
		t.Skipf("no real Cassandra here (%s is unset): %v", CassandraEnv, err)
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "userstream-cassandra-")
		if err != nil {
			shared.err = err
			return
		}
		shared.node, shared.err = engines.StartCassandra(context.Background(), dir,
			engines.WithJVMOptions(engines.QuickStartJVM...))
		if shared.err == nil {
			shared.addr = shared.node.Addr
		} else {
			os.RemoveAll(dir)
		}
	})
	if shared.err != nil {
		t.Fatalf("start Apache Cassandra: %v", shared.err)
	}
	return shared.addr
}

// RunWithCassandra runs the tests (m.Run) and then kills the node
// CassandraAddr started, if it did, and removes its data. A package whose
// tests call CassandraAddr uses it as its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(enginestest.RunWithCassandra(m)) }
func RunWithCassandra(m *testing.M) int {
	code := m.Run()
	if shared.node != nil {
		_ = shared.node.Close()
		os.RemoveAll(shared.node.Dir)
	}
	return code
}

// Keyspace returns a keyspace name no other test of any binary sharing the
// node uses, and drops that keyspace when the test ends.
func Keyspace(t testing.TB, addr string) string {
	t.Helper()
	ks := fmt.Sprintf("t%d_%d", os.Getpid(), shared.seq.Add(1))
	t.Cleanup(func() {
		if err := dropKeyspace(addr, ks); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	return ks
}

func dropKeyspace(addr, ks string) error {
	sess, err := engines.CassandraSession(addr, 30*time.Second)
	if err != nil {
		return err
	}
	defer sess.Close()
	return sess.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
}
