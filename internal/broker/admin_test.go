package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adminFixture is an embedded broker with users_created (3 partitions)
// holding n keyed records, and an Admin of it.
func adminFixture(t *testing.T, n int) (*Embedded, *Admin, *kgo.Client) {
	t.Helper()
	e := startBroker(t, "")
	cl, _ := testClient(t, e.Addr())
	produceKeyed(t, cl, Topic, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := NewAdmin(ctx, Config{Brokers: []string{e.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return e, a, cl
}

// commitGroup commits offsets for group as a consumer would.
func commitGroup(t *testing.T, addr, group string, offs map[int32]int64) {
	t.Helper()
	_, adm := testClient(t, addr)
	o := kadm.Offsets{}
	for p, at := range offs {
		o.AddOffset(Topic, p, at, -1)
	}
	resp, err := adm.CommitOffsets(context.Background(), group, o)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestAdminTopicsAndConfigs(t *testing.T) {
	ctx := context.Background()
	_, a, _ := adminFixture(t, 30)
	topics, err := a.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ts := range topics {
		if ts.Topic == Topic {
			found = true
			if ts.Partitions != 3 || ts.Records != 30 {
				t.Errorf("%s: %+v, want 3 partitions and 30 records", Topic, ts)
			}
		}
	}
	if !found {
		t.Fatalf("%s not in %+v", Topic, topics)
	}
	cfgs, err := a.TopicConfigs(ctx, Topic)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, c := range cfgs {
		keys[c.Key] = c.Value
	}
	if _, ok := keys["retention.ms"]; !ok {
		t.Errorf("configs of %s lack retention.ms: %v", Topic, keys)
	}
}

func TestAdminMessages(t *testing.T) {
	ctx := context.Background()
	_, a, _ := adminFixture(t, 60)

	all, err := a.Messages(ctx, MessageQuery{Topic: Topic, Partition: -1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 60 {
		t.Fatalf("read %d messages, want all 60", len(all))
	}
	seen := map[string]bool{}
	for i, m := range all {
		if seen[string(m.Key)] {
			t.Errorf("key %s read twice", m.Key)
		}
		seen[string(m.Key)] = true
		if i > 0 {
			prev := all[i-1]
			if prev.Partition > m.Partition || (prev.Partition == m.Partition && prev.Offset >= m.Offset) {
				t.Fatalf("not ordered by partition and offset at %d: %d/%d then %d/%d", i, prev.Partition, prev.Offset, m.Partition, m.Offset)
			}
		}
	}

	for _, tc := range []struct {
		name  string
		q     MessageQuery
		check func(t *testing.T, ms []Message)
	}{
		{"limit", MessageQuery{Topic: Topic, Partition: -1, Limit: 7}, func(t *testing.T, ms []Message) {
			if len(ms) != 7 {
				t.Errorf("got %d, want 7", len(ms))
			}
		}},
		{"one partition from an offset", MessageQuery{Topic: Topic, Partition: 1, Offset: 2, Limit: 1000}, func(t *testing.T, ms []Message) {
			if len(ms) == 0 {
				t.Fatal("nothing read")
			}
			for i, m := range ms {
				if m.Partition != 1 || m.Offset != int64(2+i) {
					t.Errorf("message %d is %d/%d, want 1/%d", i, m.Partition, m.Offset, 2+i)
				}
			}
		}},
		{"offset past the end", MessageQuery{Topic: Topic, Partition: 0, Offset: 1 << 40, Limit: 10}, func(t *testing.T, ms []Message) {
			if len(ms) != 0 {
				t.Errorf("got %d, want none", len(ms))
			}
		}},
		{"newest", MessageQuery{Topic: Topic, Partition: -1, Newest: true, Limit: 5}, func(t *testing.T, ms []Message) {
			if len(ms) != 5 {
				t.Fatalf("got %d, want 5", len(ms))
			}
			for i := 1; i < len(ms); i++ {
				if ms[i].Timestamp.After(ms[i-1].Timestamp) {
					t.Errorf("newest not first at %d", i)
				}
			}
		}},
		{"from a time after everything", MessageQuery{Topic: Topic, Partition: -1, From: time.Now().Add(time.Hour), Limit: 10}, func(t *testing.T, ms []Message) {
			if len(ms) != 0 {
				t.Errorf("got %d, want none", len(ms))
			}
		}},
		{"from a time before everything", MessageQuery{Topic: Topic, Partition: -1, From: time.Now().Add(-time.Hour), Limit: 1000}, func(t *testing.T, ms []Message) {
			if len(ms) != 60 {
				t.Errorf("got %d, want 60", len(ms))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := a.Messages(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, ms)
		})
	}

	for _, limit := range []int{0, -1, 1001} {
		if _, err := a.Messages(ctx, MessageQuery{Topic: Topic, Partition: -1, Limit: limit}); err == nil {
			t.Errorf("limit %d accepted", limit)
		}
	}
}

func TestAdminGroupsAndReset(t *testing.T) {
	ctx := context.Background()
	e, a, _ := adminFixture(t, 30)
	ends := map[int32]int64{}
	ms, err := a.Messages(ctx, MessageQuery{Topic: Topic, Partition: -1, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
	}
	// The group is caught up on partition 0 and at 1 on the others.
	commitGroup(t, e.Addr(), "g", map[int32]int64{0: ends[0], 1: 1, 2: 1})
	wantLag := ends[1] - 1 + ends[2] - 1

	groups, err := a.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Group != "g" || groups[0].Lag != wantLag || groups[0].Members != 0 {
		t.Fatalf("groups = %+v, want g with lag %d and no members", groups, wantLag)
	}
	d, err := a.Group(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if d.Lag != wantLag || len(d.Partitions) != 3 {
		t.Fatalf("group = %+v, want lag %d over 3 partitions", d, wantLag)
	}
	if _, err := a.Group(ctx, "nobody"); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("unknown group: err = %v, want GroupIDNotFound", err)
	}

	for _, tc := range []struct {
		target ResetTarget
		want   func(p int32) int64
	}{
		{ResetTarget{To: "earliest"}, func(int32) int64 { return 0 }},
		{ResetTarget{To: "latest"}, func(p int32) int64 { return ends[p] }},
		{ResetTarget{To: "offset", Offset: 3}, func(p int32) int64 { return min(3, ends[p]) }},
		{ResetTarget{To: "offset", Offset: -5}, func(int32) int64 { return 0 }},
		{ResetTarget{To: "timestamp", Time: time.Now().Add(-time.Hour)}, func(int32) int64 { return 0 }},
		{ResetTarget{To: "timestamp", Time: time.Now().Add(time.Hour)}, func(p int32) int64 { return ends[p] }},
	} {
		t.Run(fmt.Sprintf("%s %d", tc.target.To, tc.target.Offset), func(t *testing.T) {
			changes, err := a.ResetOffsets(ctx, "g", Topic, tc.target, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 3 {
				t.Fatalf("changes = %+v, want 3", changes)
			}
			for _, c := range changes {
				if c.To != tc.want(c.Partition) {
					t.Errorf("partition %d to %d, want %d", c.Partition, c.To, tc.want(c.Partition))
				}
			}
			// A preview changes nothing.
			after, err := a.Group(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if after.Lag != wantLag {
				t.Errorf("preview moved the group: lag %d, want %d", after.Lag, wantLag)
			}
		})
	}
	if _, err := a.ResetOffsets(ctx, "g", Topic, ResetTarget{To: "sideways"}, false); err == nil {
		t.Error("an unknown target was accepted")
	}

	// Applied, the group re-reads everything.
	if _, err := a.ResetOffsets(ctx, "g", Topic, ResetTarget{To: "earliest"}, true); err != nil {
		t.Fatal(err)
	}
	after, err := a.Group(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if after.Lag != 30 {
		t.Errorf("after reset to earliest lag = %d, want 30", after.Lag)
	}

	// A live group is refused an apply but may be previewed.
	cl, _ := testClient(t, e.Addr(), kgo.ConsumerGroup("live"), kgo.ConsumeTopics(Topic))
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := a.Group(ctx, "live")
		if err == nil && len(d.Members) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live consumer never joined: %+v %v", d, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cl.PollFetches(pctx)
		cancel()
	}
	if _, err := a.ResetOffsets(ctx, "live", Topic, ResetTarget{To: "earliest"}, true); !errors.Is(err, ErrGroupNotEmpty) {
		t.Errorf("reset of a live group: err = %v, want ErrGroupNotEmpty", err)
	}
	if _, err := a.ResetOffsets(ctx, "live", Topic, ResetTarget{To: "earliest"}, false); err != nil {
		t.Errorf("preview of a live group: %v", err)
	}
}

// TestAdoptOffsets: a group with no commits takes another's; one with
// commits keeps its own; nothing to take is no error.
func TestAdoptOffsets(t *testing.T) {
	ctx := context.Background()
	e, _, _ := adminFixture(t, 30)
	_, adm := testClient(t, e.Addr())
	commitGroup(t, e.Addr(), "old", map[int32]int64{0: 4, 2: 7})
	committed := func(group string) map[int32]int64 {
		gl, err := GroupOffsets(ctx, adm, group, Topic)
		if err != nil {
			t.Fatal(err)
		}
		return gl.Committed
	}
	for _, tc := range []struct {
		from, to string
		adopted  int
		want     map[int32]int64
	}{
		{"old", "new", 2, map[int32]int64{0: 4, 1: -1, 2: 7}},
		{"old", "new", 0, map[int32]int64{0: 4, 1: -1, 2: 7}}, // again: new has its own now
		{"nobody", "other", 0, map[int32]int64{0: -1, 1: -1, 2: -1}},
	} {
		n, err := AdoptOffsets(ctx, adm, tc.from, tc.to, Topic)
		if err != nil || n != tc.adopted {
			t.Fatalf("AdoptOffsets(%s -> %s) = %d, %v; want %d", tc.from, tc.to, n, err, tc.adopted)
		}
		if got := committed(tc.to); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s after adopting %s: %v, want %v", tc.to, tc.from, got, tc.want)
		}
	}
	commitGroup(t, e.Addr(), "mine", map[int32]int64{1: 2})
	if n, err := AdoptOffsets(ctx, adm, "old", "mine", Topic); err != nil || n != 0 {
		t.Fatalf("AdoptOffsets into a group with commits = %d, %v; want 0", n, err)
	}
	if got := committed("mine"); got[0] != -1 || got[1] != 2 {
		t.Errorf("mine = %v, want its own commit only", got)
	}
}
