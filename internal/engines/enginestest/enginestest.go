// Package enginestest starts the real engines of package engines for a
// test and stops them when it ends, failed or not.
package enginestest

import (
	"context"
	"os"
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
