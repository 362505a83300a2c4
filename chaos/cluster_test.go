package chaos_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// The faults of a real cluster: Apache Kafka 4 in KRaft mode on three
// nodes, users_created with replication factor 3 and min.insync.replicas 2
// (the cluster's defaults, as production runs), the producer with
// acks=all. Each case runs two stream workers of one group into one SQLite
// sink and a Connect worker's JDBC-style connector into another, and
// checks both end with every acknowledged user once.

// outage is how long a killed node stays down: the fault's length, which
// the case sets, not a wait for a condition.
const outage = 5 * time.Second

// clusterCase starts the cluster, the stream workers, the Connect worker
// and the produce of n users; fault runs once the sink holds a fifth of
// them, and returns a note for the report.
func clusterCase(t *testing.T, n int, fault func(ctx context.Context, s *proctest.Stack) string) {
	t.Helper()
	skipShort(t)
	s := proctest.StartStackOn(t, enginestest.Kafka3)
	worker(t, s, "stream-a", s.Sink)
	worker(t, s, "stream-b", s.Sink)
	const password = "cluster-chaos-pw"
	addr := proctest.FreeAddr(t)
	env := append(proctest.CleanEnv(), "USERSTREAM_ADMIN_PASSWORD="+password)
	cw := proctest.StartEnv(t, "connect", env, "connect", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--addr", addr, "--metadata", "sqlite:"+filepath.Join(s.Dir, "meta.db"))
	proctest.WaitListening(t, cw, addr)
	connectDB := filepath.Join(s.Dir, "connect.db")
	createJDBCConnector(t, s, addr, password, "cluster-jdbc", connectDB)

	prod := produceUsers(t, s, n, 10000)
	waitAbove(t, s.Sink, n/5, 90*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	note := fault(ctx, s)
	converge(t, s, prod, s.Sink, 30*time.Second, note)
	// The connector's sink ends with the same users, once each.
	acked := produced(t, prod.Output())
	waitCount(t, "sqlite:"+connectDB, int(acked), time.Now(), 60*time.Second)
	if dup := duplicates(t, "sqlite:"+connectDB); dup != 0 {
		t.Errorf("the connector's sink has %d duplicate rows", dup)
	}
}

// TestClusterLeaderKill: the leader of users_created/0 is SIGKILLed
// mid-produce and restarted 5 s later.
func TestClusterLeaderKill(t *testing.T) {
	clusterCase(t, size(30_000, 100_000), func(ctx context.Context, s *proctest.Stack) string {
		leader, err := s.Cluster.PartitionLeader(ctx, broker.Topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Cluster.Kill(leader); err != nil {
			t.Fatal(err)
		}
		time.Sleep(outage) // the outage: a deliberate fault
		if err := s.Cluster.Restart(ctx, leader); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("node %d, leader of %s/0, SIGKILLed, back after %s", leader, broker.Topic, outage)
	})
}

// TestClusterRollingRestart: every node in turn is stopped cleanly and
// started again, as an upgrade does, during one produce.
func TestClusterRollingRestart(t *testing.T) {
	if !long() {
		t.Skip("the long form runs it (make chaos)")
	}
	clusterCase(t, size(30_000, 100_000), func(ctx context.Context, s *proctest.Stack) string {
		for id := 1; id <= 3; id++ {
			if err := s.Cluster.StopNode(id); err != nil {
				t.Fatal(err)
			}
			if err := s.Cluster.Restart(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		return "nodes 1, 2, 3 stopped and started in turn"
	})
}

// TestClusterControllerKill: the active controller (the metadata quorum's
// leader) is SIGKILLed and restarted 5 s later.
func TestClusterControllerKill(t *testing.T) {
	if !long() {
		t.Skip("the long form runs it (make chaos)")
	}
	clusterCase(t, size(30_000, 100_000), func(ctx context.Context, s *proctest.Stack) string {
		c, err := s.Cluster.ActiveController(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Cluster.Kill(c); err != nil {
			t.Fatal(err)
		}
		time.Sleep(outage) // the outage: a deliberate fault
		if err := s.Cluster.Restart(ctx, c); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("active controller, node %d, SIGKILLed, back after %s", c, outage)
	})
}

// TestClusterTwoOfThreeDown: two nodes die, leaving one of the two in-sync
// replicas min.insync.replicas asks for (and one of three controller
// voters). The producer must not be told a write succeeded that the
// cluster did not take (acks=all): the sink stands still while it lasts,
// the producer waits and goes on when the nodes return, and nothing
// acknowledged is lost.
func TestClusterTwoOfThreeDown(t *testing.T) {
	if !long() {
		t.Skip("the long form runs it (make chaos)")
	}
	clusterCase(t, size(30_000, 100_000), func(ctx context.Context, s *proctest.Stack) string {
		leader, err := s.Cluster.PartitionLeader(ctx, broker.Topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		other := leader%3 + 1
		for _, id := range []int{leader, other} {
			if err := s.Cluster.Kill(id); err != nil {
				t.Fatal(err)
			}
		}
		// Two of three voters gone is also the end of the KRaft quorum, so
		// no leadership moves and no in-sync set shrinks: the survivor's
		// partitions wait for followers that do not answer, the others have
		// no leader. Nothing can be acknowledged, so nothing new reaches the
		// sink once what was in flight has landed.
		time.Sleep(outage / 2) // in flight lands: part of the outage
		stalled := proctest.Count(t, s.Sink)
		testwait.Holds(t, outage+outage/2, "the sink's count with two nodes of three down", func() (int, bool) {
			n := proctest.Count(t, s.Sink)
			return n, n == stalled
		}, testwait.Every(500*time.Millisecond))
		if err := s.Cluster.Restart(ctx, other); err != nil {
			t.Fatal(err)
		}
		if err := s.Cluster.Restart(ctx, leader); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("nodes %d and %d SIGKILLed for %s, then restarted", leader, other, 2*outage)
	})
}
