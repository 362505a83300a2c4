package stack_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
)

func start(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	st, err := stack.Start(t.Context(), stack.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// ingestAndStore produces n users from the stack's API and streams them
// into its sink, waiting until it holds want.
func ingestAndStore(t *testing.T, st *stack.Stack, n int, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	src, err := st.Source()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := ingest.Run(ctx, src, prod, st.Encoder, ingest.Config{Users: n, BatchSize: 250}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.RunStream(sctx, stream.Config{}) }()
	defer func() { stop(); <-done }()
	testwait.For(t, 60*time.Second, fmt.Sprintf("%d users in the sink", want), func() (int64, bool) {
		c, err := st.Sink.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c, c == want
	})
}

// TestStackRunsAndResumes: users flow from the built-in API through the
// embedded broker into the sink, in Avro; a second stack on the same data
// dir keeps them and the registry's ids, so old messages still decode.
func TestStackRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	st := start(t, dir)
	if st.EncoderName != "avro (schema id 1)" {
		t.Errorf("encoder %q, want Avro with schema id 1", st.EncoderName)
	}
	ingestAndStore(t, st, 1000, 1000)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st2 := start(t, dir)
	if st2.EncoderName != "avro (schema id 1)" {
		t.Errorf("after a restart the encoder is %q, want the same schema id 1", st2.EncoderName)
	}
	ingestAndStore(t, st2, 500, 1500)
}

// TestStackBusyAddress: a taken port is an error saying which listener,
// and nothing is left running.
func TestStackBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = stack.Start(t.Context(), stack.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0", APIAddr: ln.Addr().String()})
	if !errors.Is(err, stack.ErrAPIAddr) {
		t.Fatalf("Start with a busy API port: %v, want ErrAPIAddr", err)
	}
	_, err = stack.Start(t.Context(), stack.Config{DataDir: t.TempDir(), KafkaAddr: ln.Addr().String()})
	if !errors.Is(err, stack.ErrKafkaAddr) {
		t.Fatalf("Start with a busy Kafka port: %v, want ErrKafkaAddr", err)
	}
}

// TestStackOutsideKafka: a stack given an outside cluster and no registry
// ("none") starts no broker and no registry of its own, creates the topics
// the cluster lacks, and users flow through that cluster as plain JSON.
func TestStackOutsideKafka(t *testing.T) {
	outside, err := broker.StartEmbedded(t.Context(), "127.0.0.1:0", "", broker.WithoutTopics())
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	st, err := stack.Start(t.Context(), stack.Config{DataDir: t.TempDir(), Kafka: broker.Config{Brokers: []string{outside.Addr()}},
		RegistryURL: "none", KafkaAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Broker != nil || st.Registry != nil {
		t.Fatalf("the stack started a broker (%v) or a registry (%v) of its own", st.Broker, st.Registry)
	}
	if st.EncoderName != "json" {
		t.Errorf("encoder %q without a registry, want json", st.EncoderName)
	}
	cl, err := broker.NewClient(t.Context(), broker.Config{Brokers: []string{outside.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(t.Context(), broker.Topic, broker.DLQTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{broker.Topic, broker.DLQTopic} {
		if d, ok := topics[name]; !ok || d.Err != nil || len(d.Partitions) != int(broker.DefaultPartitions) {
			t.Errorf("topic %s on the outside cluster: %+v, want it created with %d partitions", name, d, broker.DefaultPartitions)
		}
	}
	ingestAndStore(t, st, 500, 500)
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), broker.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != 500 {
		t.Errorf("%s on the outside cluster holds %d messages, want the 500 produced", broker.Topic, n)
	}
}
