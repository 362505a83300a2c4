package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startBroker starts an embedded broker on a free loopback port and closes
// it when the test ends.
func startBroker(t testing.TB, dataDir string, opts ...EmbeddedOption) *Embedded {
	t.Helper()
	e, err := StartEmbedded(context.Background(), "127.0.0.1:0", dataDir, opts...)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testClient returns a client of the broker at addr, closed at test end.
func testClient(t testing.TB, addr string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := NewClient(ctx, Config{Brokers: []string{addr}}, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// produceKeyed produces n records keyed "user-i" with value "value-i" to
// topic and returns value by key.
func produceKeyed(t testing.TB, cl *kgo.Client, topic string, n int) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := make(map[string]string, n)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		k, v := fmt.Sprintf("user-%d", i), fmt.Sprintf("value-%d", i)
		want[k] = v
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return want
}

// consumeAll reads topic from the start until n records arrived.
func consumeAll(t testing.TB, addr, topic string, n int) map[string]string {
	t.Helper()
	cl, _ := testClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(map[string]string, n)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %d of %d records before %v", topic, len(got), n, err)
		}
		fs.EachError(func(t2 string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", t2, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	return got
}

func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	const group = "restart-group"

	e1, err := StartEmbedded(context.Background(), "127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl, adm := testClient(t, e1.Addr())
	want := produceKeyed(t, cl, Topic, n)

	// A real consumer group reads everything and commits.
	gcl, _ := testClient(t, e1.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(Topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for seen := 0; seen < n; {
		fs := gcl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group consumed %d of %d: %v", seen, n, ctx.Err())
		}
		seen += fs.NumRecords()
	}
	if err := gcl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	before, err := adm.FetchOffsets(ctx, group)
	if err != nil || before.Error() != nil {
		t.Fatalf("fetch offsets before restart: %v %v", err, before.Error())
	}
	gcl.Close()
	cl.Close()
	if err := e1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	e2 := startBroker(t, dir)
	_, adm2 := testClient(t, e2.Addr())
	tds, err := adm2.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{Topic, DLQTopic} {
		if got := len(tds[topic].Partitions); got != int(DefaultPartitions) {
			t.Errorf("after restart %s has %d partitions, want %d", topic, got, DefaultPartitions)
		}
	}
	got := consumeAll(t, e2.Addr(), Topic, n)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after restart record %s = %q, want %q", k, got[k], v)
		}
	}
	after, err := adm2.FetchOffsets(ctx, group)
	if err != nil || after.Error() != nil {
		t.Fatalf("fetch offsets after restart: %v %v", err, after.Error())
	}
	var total int64
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At != o.At {
			t.Errorf("committed offset %s/%d: before %d, after restart %d (found %v)", o.Topic, o.Partition, o.At, a.At, ok)
		}
		total += o.At
	})
	if total != n {
		t.Errorf("committed offsets sum to %d, want %d", total, n)
	}
	lag, err := Lag(ctx, adm2, group, Topic)
	if err != nil || lag != 0 {
		t.Errorf("lag after restart = %d, %v; want 0", lag, err)
	}
}

func TestEmbeddedAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dir := t.TempDir()

	_, err = StartEmbedded(context.Background(), addr, dir)
	if !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("StartEmbedded on a taken port: %v, want ErrAddrInUse", err)
	}
	if want := addr + " is already in use (another broker running?)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	// The failed start released the data dir: a start elsewhere works.
	e := startBroker(t, dir)
	if e.Addr() == addr {
		t.Errorf("broker took the busy address %s", addr)
	}
}

func TestEmbeddedDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startBroker(t, dir)
	_, err := StartEmbedded(context.Background(), "127.0.0.1:0", dir)
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second broker on one data dir: %v, want ErrDataDirInUse", err)
	}
}

func TestEmbeddedAddresses(t *testing.T) {
	// Pick a free port for the cases that need a known one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	for _, tc := range []struct {
		name, addr, advertise string
		wantHost, wantPort    string // "" port: any
	}{
		{name: "empty host binds loopback", addr: ":0", wantHost: "127.0.0.1"},
		{name: "explicit loopback", addr: "127.0.0.1:" + port, wantHost: "127.0.0.1", wantPort: port},
		{name: "all interfaces tells clients loopback", addr: "0.0.0.0:0", wantHost: "127.0.0.1"},
		{name: "advertised", addr: "127.0.0.1:" + port, advertise: "localhost:" + port, wantHost: "localhost", wantPort: port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []EmbeddedOption
			if tc.advertise != "" {
				opts = append(opts, WithAdvertisedAddr(tc.advertise))
			}
			e, err := StartEmbedded(context.Background(), tc.addr, "", opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			h, p, err := net.SplitHostPort(e.Addr())
			if err != nil || h != tc.wantHost || (tc.wantPort != "" && p != tc.wantPort) {
				t.Fatalf("Addr() = %q, want host %s port %q", e.Addr(), tc.wantHost, tc.wantPort)
			}
			// Clients learn the same address from metadata and can use it.
			_, adm := testClient(t, e.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			bs, err := adm.ListBrokers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != 1 || net.JoinHostPort(bs[0].Host, fmt.Sprint(bs[0].Port)) != e.Addr() {
				t.Errorf("metadata brokers = %+v, want one at %s", bs, e.Addr())
			}
		})
	}
}

func TestEmbeddedBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		opts       []EmbeddedOption
		want       string
	}{
		{name: "no port", addr: "127.0.0.1", want: "is not host:port"},
		{name: "zero partitions", addr: "127.0.0.1:0", opts: []EmbeddedOption{WithPartitions(0)}, want: "give at least 1"},
		{name: "bad advertised", addr: "127.0.0.1:0", opts: []EmbeddedOption{WithAdvertisedAddr("broker")}, want: "advertised address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := StartEmbedded(context.Background(), tc.addr, "", tc.opts...)
			if err == nil {
				e.Close()
				t.Fatalf("StartEmbedded(%q) succeeded, want error containing %q", tc.addr, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedTopicsAtStart(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []EmbeddedOption
		want map[string]int // topic -> partitions; absent topics must not exist
	}{
		{name: "default", want: map[string]int{Topic: 3, DLQTopic: 3}},
		{name: "partitions", opts: []EmbeddedOption{WithPartitions(6)}, want: map[string]int{Topic: 6, DLQTopic: 6}},
		{name: "without topics", opts: []EmbeddedOption{WithoutTopics()}, want: map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startBroker(t, "", tc.opts...)
			_, adm := testClient(t, e.Addr())
			tds, err := adm.ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[string]int)
			for name, d := range tds {
				got[name] = len(d.Partitions)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("topics = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEmbeddedRestartKeepsPartitionCount(t *testing.T) {
	dir := t.TempDir()
	e := startBroker(t, dir, WithPartitions(2))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Asking for more partitions on restart leaves the existing topic.
	e2 := startBroker(t, dir, WithPartitions(5))
	_, adm := testClient(t, e2.Addr())
	tds, err := adm.ListTopics(context.Background(), Topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tds[Topic].Partitions); got != 2 {
		t.Errorf("%s has %d partitions after restart, want the original 2", Topic, got)
	}
}

// TestEmbeddedRetention: the topics the broker creates carry a retention
// it reports and enforces: by default Kafka's 7 days and 1 GiB a
// partition; a size bound deletes the oldest records once it is passed.
func TestEmbeddedRetention(t *testing.T) {
	e := startBroker(t, "")
	_, adm := testClient(t, e.Addr())
	ctx := context.Background()
	rc, err := adm.DescribeTopicConfigs(ctx, Topic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc[0].Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["retention.ms"] != "604800000" || got["retention.bytes"] != "1073741824" || got["segment.bytes"] != "104857600" {
		t.Fatalf("retention.ms=%s retention.bytes=%s segment.bytes=%s, want 604800000, 1073741824 and 104857600",
			got["retention.ms"], got["retention.bytes"], got["segment.bytes"])
	}
	for _, tt := range []struct {
		bytes int64
		want  string
	}{{64 << 20, "8388608"}, {64 << 10, "1048576"}, {-1, "104857600"}} {
		if seg := (embeddedConfig{retentionBytes: tt.bytes}).topicConfigs()["segment.bytes"]; seg != tt.want {
			t.Errorf("retention.bytes %d: segment.bytes %s, want %s (an eighth, 1 MiB to 100 MiB)", tt.bytes, seg, tt.want)
		}
	}

	small := startBroker(t, "", WithPartitions(1), WithRetention(0, 64<<10))
	cl, sadm := testClient(t, small.Addr(), kgo.DefaultProduceTopic(Topic), kgo.ProducerLinger(0))
	val := make([]byte, 8<<10)
	rand.Read(val) // incompressible
	for range 40 { // 320 KiB in 40 batches, five times the bound
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	small.Cluster().ApplyRetention()
	starts, err := sadm.ListStartOffsets(ctx, Topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := starts.Lookup(Topic, 0)
	if o.Offset == 0 {
		t.Fatal("retention.bytes of 64 KiB kept all 320 KiB: nothing was deleted")
	}
}
