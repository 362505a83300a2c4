package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/testwait"
)

// TestDevOutsideKafka: `dev` given an outside Kafka (USERSTREAM_BROKERS, so
// the environment variable is read too) and an outside registry
// (--schema-registry) starts neither of its own, produces there, registers
// its schema in that registry and stores the users. The outside Kafka is
// the end-to-end stack's (proctest.StartStack): the embedded broker in a
// process of its own, or Apache Kafka when USERSTREAM_TEST_BROKER says so.
func TestDevOutsideKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run of the binary; -short skips it")
	}
	outside := startStack(t)
	bootstrap := outside.Kafka

	dir := t.TempDir()
	sinkURL := "sqlite:" + filepath.Join(dir, "users.db")
	kafkaAddr, registryAddr := freeAddr(t), freeAddr(t)
	dev := proctest.StartEnv(t, "dev-outside", append(proctest.CleanEnv(), "USERSTREAM_BROKERS="+bootstrap),
		"dev", "--data-dir", dir, "--kafka-addr", kafkaAddr, "--registry-addr", registryAddr, "--schema-registry", outside.RegistryURL(),
		"--api-addr", freeAddr(t), "--metrics-addr", freeAddr(t), "--web-addr", freeAddr(t), "--connect-addr", freeAddr(t),
		"--schedule", "@every 1s", "--users-per-run", "500", "--status-every", "1s")
	testwait.For(t, 60*time.Second, "1000 users stored through the outside Kafka", func() (string, bool) {
		if dev.Exited() {
			t.Fatalf("dev exited:\n%s", dev.Output())
		}
		n := count(t, sinkURL)
		return fmt.Sprintf("%d stored", n), n >= 1000
	})

	out := dev.Output()
	if want := "Kafka             " + bootstrap; !strings.Contains(out, want) {
		t.Errorf("dev's banner lacks %q:\n%s", want, out)
	}
	for name, addr := range map[string]string{"--kafka-addr": kafkaAddr, "--registry-addr": registryAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("something listens on dev's %s %s: dev started its own server", name, addr)
		}
	}
	if n := proctest.EndOffsets(t, bootstrap, broker.Topic); n < 1000 {
		t.Errorf("%s on the outside Kafka holds %d messages, want the 1000 stored at least", broker.Topic, n)
	}
	adm := kadm.NewClient(proctest.Client(t, bootstrap))
	topics, err := adm.ListTopics(t.Context(), broker.Topic, broker.DLQTopic)
	if err != nil {
		t.Fatal(err)
	}
	// On Apache Kafka, which dev created them on, the topics have the
	// cluster's default replication factor.
	rf := -1
	if outside.Cluster != nil {
		brokers, err := adm.ListBrokers(t.Context())
		if err != nil || len(brokers) == 0 {
			t.Fatalf("brokers of the outside Kafka: %v %v", brokers, err)
		}
		cfgs, err := adm.DescribeBrokerConfigs(t.Context(), brokers[0].NodeID)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range cfgs {
			for _, c := range rc.Configs {
				if c.Key == "default.replication.factor" {
					rf, _ = strconv.Atoi(c.MaybeValue())
				}
			}
		}
		if rf < 1 {
			t.Fatalf("the cluster's default.replication.factor is not in its broker configs: %v", cfgs)
		}
		t.Logf("the cluster's default.replication.factor: %d", rf)
	}
	for _, name := range []string{broker.Topic, broker.DLQTopic} {
		d, ok := topics[name]
		if !ok || d.Err != nil {
			t.Errorf("topic %s on the outside Kafka: %v (dev creates the topics the cluster lacks)", name, d.Err)
			continue
		}
		if rf > 0 {
			for _, p := range d.Partitions {
				if len(p.Replicas) != rf {
					t.Errorf("%s partition %d has %d replicas, want the cluster's default.replication.factor %d", name, p.Partition, len(p.Replicas), rf)
				}
			}
		}
	}
	resp, err := http.Get(outside.RegistryURL() + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	err = json.NewDecoder(resp.Body).Decode(&subjects)
	resp.Body.Close()
	if err != nil || len(subjects) != 1 || subjects[0] != schema.Subject {
		t.Errorf("the outside registry's subjects: %v (%v), want [%s]: dev registered its schema elsewhere", subjects, err, schema.Subject)
	}

	dev.Signal(syscall.SIGINT)
	if code := dev.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("dev exited %d on Ctrl-C:\n%s", code, dev.Output())
	}
}
