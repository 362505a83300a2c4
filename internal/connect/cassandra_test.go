package connect_test

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/sink/cassandra/cassandratest"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/testwait"
)

// A connector from a DataStax-sink-style config writes the CQL double.
func TestCassandraConnectorFromDataStaxConfig(t *testing.T) {
	d, err := cassandratest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	host, port, _ := net.SplitHostPort(d.Addr())
	addr := startBroker(t)
	wk := startWorker(t, addr, "w1")
	cfg := map[string]string{
		"connector.class": connect.ClassCassandra, "tasks.max": "1", "topics": broker.Topic,
		"contactPoints": host, "port": port, "loadBalancing.localDc": "datacenter1",
		"topic.users_created.spark_streams.created_users.mapping": "id=value.id, first_name=value.first_name, last_name=value.last_name",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}
	expectCode(t, "create", call(t, wk.url, "POST", "/connectors", true, map[string]any{"name": "cass", "config": cfg}, nil), 201)
	produceUsers(t, addr, 0, 500)
	testwait.For(t, 60*time.Second, "500 rows in the double", func() (int, bool) {
		n := d.Rows("spark_streams", "created_users")
		return n, n == 500
	})
	var st connect.Status
	expectCode(t, "status", call(t, wk.url, "GET", "/connectors/cass/status", false, nil, &st), 200)
	if len(st.Tasks) != 1 || st.Tasks[0].State != connect.StateRunning {
		t.Fatalf("status = %+v, want one RUNNING task", st)
	}
}

// The DataStax-style connector stores every user exactly once on a real
// Cassandra 5.0 node (20,000 users; 100,000 with USERSTREAM_CHAOS=long):
// the table holds as many rows as users were produced, and every produced
// id reads back with its fields.
func TestCassandraConnectorReal(t *testing.T) {
	n := 20_000
	if os.Getenv("USERSTREAM_CHAOS") == "long" {
		n = 100_000
	}
	caddr := enginestest.CassandraAddr(t)
	ks := enginestest.Keyspace(t, caddr)
	host, port, _ := net.SplitHostPort(caddr)
	addr := startBroker(t)
	wk := startWorker(t, addr, "w1")
	cfg := map[string]string{
		"connector.class": connect.ClassCassandra, "tasks.max": "2", "topics": broker.Topic,
		"contactPoints": host, "port": port, "loadBalancing.localDc": "datacenter1",
		"topic.users_created." + ks + ".created_users.mapping": "id=value.id, first_name=value.first_name, last_name=value.last_name",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}
	expectCode(t, "create", call(t, wk.url, "POST", "/connectors", true, map[string]any{"name": "cass", "config": cfg}, nil), 201)
	for from := 0; from < n; from += 10_000 {
		produceUsers(t, addr, from, min(10_000, n-from))
	}
	url := "cassandra://" + caddr + "/" + ks
	testwait.For(t, 5*time.Minute, fmt.Sprintf("%d rows in %s.created_users", n, ks), func() (int64, bool) {
		got := count(t, url)
		return got, got >= int64(n)
	})
	s, err := sinks.Open(t.Context(), url, sinks.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Count(t.Context()); err != nil || got != int64(n) {
		t.Fatalf("count = %d, %v; want exactly %d", got, err, n)
	}
	for i := 0; i < n; i += n / 200 {
		want := sinktest.Record(i)
		got, err := s.Get(t.Context(), want.ID)
		if err != nil || got.Email != want.Email || got.Nat != want.Nat {
			t.Fatalf("user %d (%s): %+v, %v; want the produced fields", i, want.ID, got, err)
		}
	}
}
