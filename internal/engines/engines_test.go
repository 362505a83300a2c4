package engines_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/engines/enginestest"
)

// roundTrip creates a topic, produces one record with acks=all and reads
// it back, proving the cluster serves clients end to end.
func roundTrip(t *testing.T, bootstrap string, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, rf, nil, "t"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "v" {
		t.Fatalf("read back %d records, want the one produced", len(recs))
	}
}

func TestKafkaKRaftOneNode(t *testing.T) {
	k := enginestest.StartKafka(t)
	roundTrip(t, k.Bootstrap(), 1)
	if k.Mode != engines.KRaft || len(k.Brokers) != 1 {
		t.Fatalf("cluster %+v, want one KRaft node", k)
	}
}

// TestKafkaThreeNodesKillRestart: node 2 of three is killed, the others go
// on serving a topic of replication factor 3, and node 2 comes back on its
// data.
func TestKafkaThreeNodesKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("three JVMs; -short skips it")
	}
	k := enginestest.StartKafka(t, engines.WithNodes(3))
	roundTrip(t, k.Bootstrap(), 3)
	if c, err := k.ActiveController(t.Context()); err != nil || c < 1 || c > 3 {
		t.Fatalf("active controller %d, err %v; want a node of 1-3", c, err)
	}
	if l, err := k.PartitionLeader(t.Context(), "t", 0); err != nil || l < 1 || l > 3 {
		t.Fatalf("leader of t/0: %d, err %v; want a node of 1-3", l, err)
	}
	if err := k.Kill(2); err != nil {
		t.Fatal(err)
	}
	p, _ := k.Node(2)
	if p.Alive() {
		t.Fatal("node 2 is alive after Kill")
	}
	// OpenKafka (what scripts/engines.sh uses from another process) finds
	// the same cluster and restarts the node.
	again, err := engines.OpenKafka(k.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Restart(t.Context(), 2); err != nil {
		t.Fatalf("restart node 2: %v", err)
	}
	p2, _ := again.Node(2)
	t.Cleanup(func() { _ = p2.Kill() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(p2.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m, err := kadm.NewClient(cl).BrokerMetadata(t.Context())
	if err != nil || len(m.Brokers) != 3 {
		t.Fatalf("metadata from the restarted node: %v brokers, err %v", len(m.Brokers), err)
	}
}

func TestKafkaZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("two JVMs; -short skips it")
	}
	k := enginestest.StartKafka(t, engines.WithZooKeeper())
	if k.ZooKeeper == "" || k.Mode != engines.ZooKeeper {
		t.Fatalf("cluster %+v, want ZooKeeper mode", k)
	}
	roundTrip(t, k.Bootstrap(), 1)
}

func TestStartKafkaRejectsTwoNodes(t *testing.T) {
	if _, err := engines.StartKafka(t.Context(), t.TempDir(), engines.WithNodes(2)); err == nil {
		t.Fatal("StartKafka with 2 nodes: no error")
	}
}
