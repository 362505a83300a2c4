package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestEnsureTopicsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := startBroker(t, "", WithoutTopics())
	_, adm := testClient(t, e.Addr())

	// Steps run in order on one broker.
	for _, step := range []struct {
		name       string
		partitions int32
		topics     []string
		want       []EnsuredTopic // Note is compared by "non-empty"
		wantErr    string
	}{
		{name: "create one", partitions: 3, topics: []string{Topic},
			want: []EnsuredTopic{{Topic: Topic, Created: true, Partitions: 3}}},
		{name: "one exists, one missing", partitions: 3, topics: []string{Topic, DLQTopic},
			want: []EnsuredTopic{{Topic: Topic, Partitions: 3}, {Topic: DLQTopic, Created: true, Partitions: 3}}},
		{name: "again: nothing to do", partitions: 3, topics: []string{Topic, DLQTopic},
			want: []EnsuredTopic{{Topic: Topic, Partitions: 3}, {Topic: DLQTopic, Partitions: 3}}},
		{name: "more partitions asked: note, no failure", partitions: 8, topics: []string{Topic},
			want: []EnsuredTopic{{Topic: Topic, Partitions: 3, Note: "x"}}},
		{name: "fewer partitions asked: fine", partitions: 1, topics: []string{Topic},
			want: []EnsuredTopic{{Topic: Topic, Partitions: 3}}},
		{name: "broker default partitions", partitions: -1, topics: []string{"other"},
			want: []EnsuredTopic{{Topic: "other", Created: true, Partitions: 3}}},
		{name: "zero partitions", partitions: 0, topics: []string{"bad"}, wantErr: "give a positive count"},
		{name: "name colliding with users_created", partitions: 1, topics: []string{"users.created"}, wantErr: "create users.created with 1 partitions"},
	} {
		t.Run(step.name, func(t *testing.T) {
			got, err := EnsureTopics(ctx, adm, step.partitions, -1, step.topics...)
			if step.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), step.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, step.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(step.want) {
				t.Fatalf("report = %+v, want %+v", got, step.want)
			}
			for i, w := range step.want {
				g := got[i]
				if g.Topic != w.Topic || g.Created != w.Created || g.Partitions != w.Partitions || (g.Note != "") != (w.Note != "") {
					t.Errorf("report[%d] = %+v, want %+v (note non-empty: %v)", i, g, w, w.Note != "")
				}
			}
		})
	}

	// A second call agrees and the topics really are there with their counts.
	if _, err := EnsureTopics(ctx, adm, 3, -1, Topic, DLQTopic); err != nil {
		t.Fatal(err)
	}
	tds, err := adm.ListTopics(ctx, Topic, DLQTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{Topic, DLQTopic} {
		if n := len(tds[topic].Partitions); n != 3 {
			t.Errorf("%s has %d partitions, want 3", topic, n)
		}
	}
}

// commit commits offsets for group on Topic: partition -> offset.
func commit(t *testing.T, adm *kadm.Client, group string, offs map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for p, o := range offs {
		os.AddOffset(Topic, p, o, -1)
	}
	if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatalf("commit %v: %v", offs, err)
	}
}

func TestLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := startBroker(t, "")
	cl, adm := testClient(t, e.Addr())
	const n = 90
	produceKeyed(t, cl, Topic, n)
	ends, err := adm.ListEndOffsets(ctx, Topic)
	if err != nil {
		t.Fatal(err)
	}
	end := func(p int32) int64 { o, _ := ends.Lookup(Topic, p); return o.Offset }
	var sum int64
	for p := range int32(3) {
		sum += end(p)
	}
	if sum != n {
		t.Fatalf("end offsets sum to %d, want %d", sum, n)
	}

	// Each case commits on its own group.
	for _, tc := range []struct {
		name    string
		commits map[int32]int64
		want    int64
	}{
		{name: "no group", want: n},
		{name: "all committed", commits: map[int32]int64{0: end(0), 1: end(1), 2: end(2)}, want: 0},
		{name: "partly", commits: map[int32]int64{0: end(0) - 5, 1: end(1) - 2, 2: end(2)}, want: 7},
		{name: "one partition not committed", commits: map[int32]int64{0: end(0), 1: end(1)}, want: end(2)},
		{name: "at zero", commits: map[int32]int64{0: 0, 1: 0, 2: 0}, want: n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := "lag-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.commits != nil {
				commit(t, adm, group, tc.commits)
			}
			got, err := Lag(ctx, adm, group, Topic)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Lag = %d, want %d", got, tc.want)
			}
		})
	}

	if _, err := Lag(ctx, adm, "g", "no-such-topic"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("Lag on a missing topic: %v, want UnknownTopicOrPartition", err)
	}
}

func TestListAndDescribeTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := startBroker(t, "")
	cl, adm := testClient(t, e.Addr())
	const n = 30
	produceKeyed(t, cl, Topic, n)
	ends, err := adm.ListEndOffsets(ctx, Topic)
	if err != nil {
		t.Fatal(err)
	}
	e0, _ := ends.Lookup(Topic, 0)
	commit(t, adm, "g-partial", map[int32]int64{0: e0.Offset})
	commit(t, adm, "g-zero", map[int32]int64{0: 0, 1: 0, 2: 0})

	list, err := ListTopics(ctx, adm)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]TopicSummary)
	for _, s := range list {
		got[s.Topic] = s
	}
	if s := got[Topic]; s.Partitions != 3 || s.Records != n || s.EndOffsets != n {
		t.Errorf("list %s = %+v, want 3 partitions, %d records", Topic, s, n)
	}
	if s := got[DLQTopic]; s.Partitions != 3 || s.Records != 0 {
		t.Errorf("list %s = %+v, want 3 partitions, 0 records", DLQTopic, s)
	}
	if len(list) != 2 || list[0].Topic > list[1].Topic {
		t.Errorf("list = %+v, want the two topics sorted", list)
	}

	d, err := DescribeTopic(ctx, adm, Topic)
	if err != nil {
		t.Fatal(err)
	}
	var ends2, size int64
	for i, p := range d.Partitions {
		if p.Partition != int32(i) || p.Leader != 0 || p.Start != 0 {
			t.Errorf("partition %d = %+v, want leader 0, start 0", i, p)
		}
		if (p.End > 0) != (p.Size > 0) {
			t.Errorf("partition %d: %d messages in %d bytes", i, p.End, p.Size)
		}
		ends2 += p.End
		size += p.Size
	}
	if d.Size != size || d.Size < n {
		t.Errorf("topic size %d, partitions' %d, want their sum and at least a byte per message (%d)", d.Size, size, n)
	}
	if len(d.Partitions) != 3 || ends2 != n {
		t.Errorf("describe: %d partitions ending at %d in all, want 3 and %d", len(d.Partitions), ends2, n)
	}
	if len(d.Groups) != 2 || d.Groups[0].Group != "g-partial" || d.Groups[1].Group != "g-zero" {
		t.Fatalf("groups = %+v, want g-partial and g-zero", d.Groups)
	}
	for _, g := range d.Groups {
		lag, err := Lag(ctx, adm, g.Group, Topic)
		if err != nil || g.Lag != lag {
			t.Errorf("describe lag of %s = %d, Lag() = %d, %v", g.Group, g.Lag, lag, err)
		}
	}
	if d.Groups[0].Lag != n-e0.Offset || d.Groups[0].Committed[1] != -1 {
		t.Errorf("g-partial = %+v, want lag %d and no commit on partition 1", d.Groups[0], n-e0.Offset)
	}
	if d.Groups[1].Lag != n {
		t.Errorf("g-zero lag = %d, want %d", d.Groups[1].Lag, n)
	}

	if _, err := DescribeTopic(ctx, adm, "missing"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("describe missing topic: %v, want UnknownTopicOrPartition", err)
	}
}
