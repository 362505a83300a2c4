package connect_test

import (
	"net"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/sink/cassandra/cassandratest"
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
