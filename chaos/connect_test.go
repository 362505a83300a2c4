package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestConnectWorkerKill: two `userstream connect` workers in one cluster
// run one JDBC-style connector with tasks.max=3 (created through the REST
// API, as a Connect user would); one worker is SIGKILLed mid-run. "gone":
// it stays dead; its tasks' partitions move to the other worker's tasks
// when their session ends. "restarted": it is started again at once with
// the same command line, as systemd or Compose would; its tasks lease
// their instance ids back (package member) and take their partitions at
// once, and the sink holds every user within 3 s of the produce's end.
// Either way every acknowledged user is stored once: 0 lost, 0 duplicate.
func TestConnectWorkerKill(t *testing.T) {
	skipShort(t)
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "gone", true: "restarted"}[restart]
		t.Run(name, func(t *testing.T) { connectWorkerKill(t, restart) })
	}
}

func connectWorkerKill(t *testing.T, restart bool) {
	s := proctest.StartStack(t)
	sinkURL := s.Sink // the sqlite: URL of the file the connector writes
	dbPath := strings.TrimPrefix(sinkURL, "sqlite:")
	n, rate := size(30_000, 100_000), size(3000, 5000)
	const password = "connect-chaos-pw"
	env := append(proctest.CleanEnv(), "USERSTREAM_ADMIN_PASSWORD="+password)
	meta := "sqlite:" + filepath.Join(s.Dir, "meta.db")
	var workers []*proctest.Proc
	var addrs []string
	// The default session (10 s) when the killed worker comes back: a dead
	// member would hold its partitions past the produce's end.
	session := map[bool]string{false: "6s", true: "10s"}[restart]
	startWorker := func(name, addr string) *proctest.Proc {
		w := proctest.StartEnv(t, name, env, "connect", "--brokers", s.Kafka,
			"--schema-registry", s.RegistryURL(), "--addr", addr, "--metadata", meta, "--session-timeout", session)
		proctest.WaitListening(t, w, addr)
		return w
	}
	for i := range 2 {
		addr := proctest.FreeAddr(t)
		workers, addrs = append(workers, startWorker("connect-"+string(rune('a'+i)), addr)), append(addrs, addr)
	}
	createJDBCConnector(t, s, addrs[0], password, "chaos-jdbc", dbPath)
	prod := produceUsers(t, s, n, rate)
	waitAbove(t, sinkURL, map[bool]int{false: n / 3, true: n / 2}[restart], 60*time.Second)
	// 6 tasks share 3 partitions: kill a worker whose tasks hold some, so
	// that they have to move.
	victim := holder(t, s.Kafka, "connect-chaos-jdbc", addrs)
	survivor := addrs[1-victim]
	workers[victim].Kill(t)
	if restart {
		startWorker("connect-again", addrs[victim])
		conv := converge(t, s, prod, sinkURL, 0, "2 Connect workers, tasks.max=3, one SIGKILLed and restarted at once")
		// A dynamic member (before) made it 6.1 s: its dead predecessor
		// held its partitions for the session.
		if conv > 3*time.Second {
			t.Errorf("the sink held every user %.1fs after the produce ended, want within 3 s", conv.Seconds())
		}
		return
	}
	// The killed worker's tasks hold their partitions until their 6 s
	// session ends; then the survivor's tasks take them.
	converge(t, s, prod, sinkURL, 10*time.Second, "2 Connect workers, tasks.max=3, one SIGKILLed")

	// The dead worker's status goes stale (8 s) and leaves the list.
	testwait.For(t, 20*time.Second, "the survivor's ("+survivor+") 3 tasks alone in the status, RUNNING", func() (connStatus, bool) {
		status, ok := connectorStatus(t, survivor, "chaos-jdbc")
		if !ok || status.Connector.State != "RUNNING" || len(status.Tasks) != 3 {
			return status, false
		}
		for _, task := range status.Tasks {
			if task.State != "RUNNING" || task.WorkerID != survivor {
				return status, false
			}
		}
		return status, true
	}, testwait.Every(250*time.Millisecond))
}

// createJDBCConnector creates, through the REST API of the worker at addr,
// a JDBC-style connector with tasks.max=3 upserting users_created into the
// SQLite file dbPath.
func createJDBCConnector(t *testing.T, s *proctest.Stack, addr, password, name, dbPath string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "config": map[string]string{
		"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "topics": "users_created", "tasks.max": "3",
		"connection.url": "jdbc:sqlite:" + dbPath, "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id",
		"table.name.format": "created_users", "auto.create": "true",
		"value.converter": "io.confluent.connect.avro.AvroConverter", "value.converter.schema.registry.url": s.RegistryURL(),
	}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/connectors", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created bytes.Buffer
	created.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /connectors: %d %s", resp.StatusCode, created.String())
	}
}

type connStatus struct {
	Connector struct{ State string } `json:"connector"`
	Tasks     []struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"tasks"`
}

// connectorStatus reads GET /connectors/NAME/status from the worker at addr.
func connectorStatus(t *testing.T, addr, name string) (connStatus, bool) {
	t.Helper()
	var st connStatus
	resp, err := http.Get("http://" + addr + "/connectors/" + name + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil
}

// holder returns the index in workers (their REST addresses, which end the
// tasks' client ids) of a worker whose tasks hold partitions of the group.
func holder(t *testing.T, kafka, group string, workers []string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	held := -1
	testwait.For(t, 20*time.Second, fmt.Sprintf("a member of %s with partitions and a client id naming one of %v", group, workers), func() (any, bool) {
		groups, err := kadm.NewClient(cl).DescribeGroups(context.Background(), group)
		if err != nil {
			return err, false
		}
		for _, m := range groups[group].Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				for i, w := range workers {
					if strings.HasSuffix(m.ClientID, "-"+w) {
						held = i
						return m.ClientID, true
					}
				}
			}
		}
		return groups[group].Members, false
	}, testwait.Every(200*time.Millisecond))
	return held
}
