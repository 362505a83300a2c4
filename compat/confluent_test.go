package compat

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/user"
)

const topic = "users_created"

// pyUser is a user as confluent_serde.py prints it: the record's fields,
// ingested_at in epoch milliseconds.
type pyUser struct {
	user.Record
	IngestedAt int64 `json:"ingested_at"`
}

func (u pyUser) record() user.Record {
	r := u.Record
	r.IngestedAt = time.UnixMilli(u.IngestedAt).UTC()
	return r
}

// same compares two records, ingested_at as an instant.
func same(a, b user.Record) bool {
	ta, tb := a.IngestedAt, b.IngestedAt
	a.IngestedAt, b.IngestedAt = time.Time{}, time.Time{}
	return ta.Equal(tb) && a == b
}

func startStream(t *testing.T, s *proctest.Stack) {
	proctest.Start(t, "stream", "stream", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--sink", s.Sink, "--metrics-addr", "")
}

// TestConfluentAvroSerializer: Confluent's AvroSerializer writes 1,000 users
// to users_created through our registry, a quarter in each configuration a
// user's producer may have (auto-register with normalize, lookup without
// auto-register, a v2 schema auto-registered, use.latest.version), and our
// stream stores every one of them exactly as sent.
func TestConfluentAvroSerializer(t *testing.T) {
	compatPython(t)
	s := proctest.StartStack(t)
	startStream(t, s)
	dir := t.TempDir()
	avsc := filepath.Join(dir, "user.avsc")
	if err := os.WriteFile(avsc, []byte(schema.UserSchema()), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var got struct {
		Phases map[string]struct {
			Count    int `json:"count"`
			SchemaID int `json:"schema_id"`
		} `json:"phases"`
		Users []pyUser `json:"users"`
	}
	runPython(t, &got, "confluent_serde.py", "produce", s.Kafka, s.RegistryURL(), topic, avsc, strconv.Itoa(n))

	ph := got.Phases
	t.Logf("schema ids by serializer configuration: %+v", ph)
	v1, v2 := ph["auto_register_normalize"].SchemaID, ph["auto_register_v2"].SchemaID
	if v1 == 0 || v2 == 0 || v1 == v2 {
		t.Fatalf("schema ids: v1 %d, v2 %d; want two different registered ids (%+v)", v1, v2, ph)
	}
	if id := ph["lookup"].SchemaID; id != v1 {
		t.Errorf("the looked-up schema has id %d, want v1's %d", id, v1)
	}
	if id := ph["use_latest_version"].SchemaID; id != v2 {
		t.Errorf("use.latest.version wrote id %d, want the latest's (v2) %d", id, v2)
	}
	cl, err := sr.NewClient(sr.URLs(s.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if vs, err := cl.SubjectVersions(ctx, topic+"-value"); err != nil || len(vs) != 2 {
		t.Errorf("subject %s-value has versions %v (%v), want [1 2]", topic, vs, err)
	}

	proctest.WaitCount(t, s.Sink, n, 60*time.Second)
	sk, err := sinks.Open(ctx, s.Sink, sinks.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	if len(got.Users) != n {
		t.Fatalf("the script reports %d users, want %d", len(got.Users), n)
	}
	for _, u := range got.Users {
		stored, err := sk.Get(ctx, u.ID)
		if err != nil {
			t.Fatalf("user %s (%s): %v", u.ID, u.RunID, err)
		}
		if want := u.record(); !same(stored, want) {
			t.Fatalf("user %s stored as\n%+v\nwant\n%+v", u.ID, stored, want)
		}
	}
}

// TestConfluentAvroDeserializer: what `userstream produce` writes reads back
// through Confluent's AvroDeserializer as the same users our own serde reads.
func TestConfluentAvroDeserializer(t *testing.T) {
	compatPython(t)
	s := proctest.StartStack(t)
	const n = 300
	if _, errOut, code := proctest.Run(t, "produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--source", s.SourceURL(), "--users", strconv.Itoa(n)); code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	var got struct {
		Users []pyUser `json:"users"`
	}
	runPython(t, &got, "confluent_serde.py", "consume", s.Kafka, s.RegistryURL(), topic, strconv.Itoa(n))
	if len(got.Users) != n {
		t.Fatalf("AvroDeserializer read %d users, want %d", len(got.Users), n)
	}

	// Our own reading of the same messages.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srcl, err := sr.NewClient(sr.URLs(s.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	serde, err := schema.NewSerde(ctx, srcl, schema.WithoutRegistration())
	if err != nil {
		t.Fatal(err)
	}
	cl := proctest.Client(t, s.Kafka, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ours := map[string]user.Record{}
	for len(ours) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d users back: %v", len(ours), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			u, err := serde.Decode(r.Value)
			if err != nil {
				t.Fatalf("our serde: %v", err)
			}
			ours[u.ID] = u
		})
	}
	for _, u := range got.Users {
		want, ok := ours[u.ID]
		if !ok {
			t.Fatalf("AvroDeserializer read user %s, which our serde did not", u.ID)
		}
		if g := u.record(); !same(g, want) {
			t.Fatalf("user %s: AvroDeserializer read\n%+v\nour serde\n%+v", u.ID, g, want)
		}
	}
}
