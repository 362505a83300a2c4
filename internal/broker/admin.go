package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Admin reads and changes what Control Center shows of a cluster: topics,
// their configs and messages, consumer groups, their members and lag, and
// offset resets. It wraps a client and is safe for concurrent use.
type Admin struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin connects to the cluster c names (NewClient); Close releases it.
func NewAdmin(ctx context.Context, c Config) (*Admin, error) {
	cl, err := NewClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: c, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the Admin's client.
func (a *Admin) Close() { a.cl.Close() }

// Topics lists the topics (ListTopics).
func (a *Admin) Topics(ctx context.Context) ([]TopicSummary, error) { return ListTopics(ctx, a.adm) }

// BrokerSummary is one node of the cluster as its metadata lists it.
type BrokerSummary struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
}

// Brokers lists the cluster's live brokers by node id (a Metadata
// request): one for the embedded broker, every node of a real cluster
// that is up.
func (a *Admin) Brokers(ctx context.Context) ([]BrokerSummary, error) {
	m, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("brokers: %w", err)
	}
	bs := make([]BrokerSummary, 0, len(m.Brokers))
	for _, b := range m.Brokers {
		s := BrokerSummary{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			s.Rack = *b.Rack
		}
		bs = append(bs, s)
	}
	slices.SortFunc(bs, func(x, y BrokerSummary) int { return int(x.NodeID - y.NodeID) })
	return bs, nil
}

// Topic describes one topic (DescribeTopic).
func (a *Admin) Topic(ctx context.Context, topic string) (TopicDescription, error) {
	return DescribeTopic(ctx, a.adm, topic)
}

// ConfigEntry is one topic config, with where its value comes from.
type ConfigEntry struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Source    string `json:"source"` // DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
	Sensitive bool   `json:"sensitive"`
}

// TopicConfigs returns a topic's configs, by key; sensitive values are
// never returned.
func (a *Admin) TopicConfigs(ctx context.Context, topic string) ([]ConfigEntry, error) {
	rc, err := a.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("configs of %s: %w", topic, err)
	}
	r, err := rc.On(topic, nil)
	if err != nil {
		return nil, fmt.Errorf("configs of %s: %w", topic, err)
	}
	if r.Err != nil {
		return nil, fmt.Errorf("configs of %s: %w", topic, r.Err)
	}
	out := make([]ConfigEntry, 0, len(r.Configs))
	for _, c := range r.Configs {
		e := ConfigEntry{Key: c.Key, Source: c.Source.String(), Sensitive: c.Sensitive}
		if c.Value != nil && !c.Sensitive {
			e.Value = *c.Value
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y ConfigEntry) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// GroupSummary is one consumer group of the list.
type GroupSummary struct {
	Group    string `json:"group"`
	State    string `json:"state"`
	Protocol string `json:"protocol"`
	Members  int    `json:"members"`
	// Lag is over every topic the group has committed on.
	Lag int64 `json:"lag"`
}

// MemberDescription is one member of a group.
type MemberDescription struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	Host       string             `json:"host"`
	Assigned   map[string][]int32 `json:"assigned"`
}

// PartitionLag is a group's position on one partition.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: none
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"` // the member's client id@host that owns it now
}

// GroupDescription is a group with its members and its lag per partition.
type GroupDescription struct {
	Group      string              `json:"group"`
	State      string              `json:"state"`
	Protocol   string              `json:"protocol"`
	Members    []MemberDescription `json:"members"`
	Partitions []PartitionLag      `json:"partitions"`
	Lag        int64               `json:"lag"`
}

// Groups lists the consumer groups, by name, with their state and lag.
func (a *Admin) Groups(ctx context.Context) ([]GroupSummary, error) {
	listed, err := a.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	names := listed.Groups()
	if len(names) == 0 {
		return []GroupSummary{}, nil
	}
	described, err := a.adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	lags, err := a.adm.Lag(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("lag of groups: %w", err)
	}
	out := make([]GroupSummary, 0, len(names))
	for _, g := range names {
		d := described[g]
		s := GroupSummary{Group: g, State: d.State, Protocol: d.Protocol, Members: len(d.Members)}
		if l, ok := lags[g]; ok && l.Error() == nil {
			s.Lag = max(l.Lag.Total(), 0)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y GroupSummary) int { return strings.Compare(x.Group, y.Group) })
	return out, nil
}

// Group describes one group: members, assignments, committed offsets and
// lag per partition. A group that does not exist is an error matching
// kerr.GroupIDNotFound.
func (a *Admin) Group(ctx context.Context, group string) (GroupDescription, error) {
	described, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return GroupDescription{}, fmt.Errorf("describe group %s: %w", group, err)
	}
	d, ok := described[group]
	// Kafka answers a group it does not know as Dead, without an error.
	if !ok || (d.State == "Dead" && len(d.Members) == 0) {
		return GroupDescription{}, fmt.Errorf("group %s: %w", group, kerr.GroupIDNotFound)
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return GroupDescription{}, fmt.Errorf("group %s: %w", group, d.Err)
	}
	out := GroupDescription{Group: group, State: d.State, Protocol: d.Protocol}
	owner := map[string]map[int32]string{}
	for _, m := range d.Members {
		md := MemberDescription{MemberID: m.MemberID, ClientID: m.ClientID, Host: strings.TrimPrefix(m.ClientHost, "/"),
			Assigned: map[string][]int32{}}
		if m.InstanceID != nil {
			md.InstanceID = *m.InstanceID
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				md.Assigned[t.Topic] = append(md.Assigned[t.Topic], t.Partitions...)
				if owner[t.Topic] == nil {
					owner[t.Topic] = map[int32]string{}
				}
				for _, p := range t.Partitions {
					owner[t.Topic][p] = md.ClientID + "@" + md.Host
				}
			}
		}
		out.Members = append(out.Members, md)
	}
	lags, err := a.adm.Lag(ctx, group)
	if err != nil {
		return GroupDescription{}, fmt.Errorf("lag of group %s: %w", group, err)
	}
	l := lags[group]
	if err := l.Error(); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return GroupDescription{}, fmt.Errorf("lag of group %s: %w", group, err)
	}
	for t, ps := range l.Lag {
		for p, ml := range ps {
			pl := PartitionLag{Topic: t, Partition: p, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag,
				Member: owner[t][p]}
			if pl.Lag < 0 {
				pl.Lag = 0
			}
			out.Partitions = append(out.Partitions, pl)
			out.Lag += pl.Lag
		}
	}
	slices.SortFunc(out.Partitions, func(x, y PartitionLag) int {
		if c := strings.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return int(x.Partition - y.Partition)
	})
	return out, nil
}

// ResetTarget is where ResetOffsets moves a group: "earliest", "latest",
// a time (every partition to the first offset at or after it), or an offset
// (every partition, clamped to the partition's range).
type ResetTarget struct {
	To     string    `json:"to"` // earliest, latest, timestamp, offset
	Time   time.Time `json:"time,omitzero"`
	Offset int64     `json:"offset,omitempty"`
}

// OffsetChange is one partition of a reset.
type OffsetChange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"` // -1: none committed
	To        int64  `json:"to"`
}

// ErrGroupNotEmpty is matched by ResetOffsets on a group with members:
// Kafka refuses to move a live group's offsets.
var ErrGroupNotEmpty = errors.New("the group has members; stop its consumers first")

// ResetOffsets computes the new offsets of group on topic for target and,
// when apply is set, commits them. It refuses a group with members
// (ErrGroupNotEmpty), as Kafka does; a dry run (apply false) is always
// allowed.
func (a *Admin) ResetOffsets(ctx context.Context, group, topic string, target ResetTarget, apply bool) ([]OffsetChange, error) {
	described, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	if d, ok := described[group]; ok && len(d.Members) > 0 && apply {
		return nil, fmt.Errorf("reset offsets of %s: %w (%d members, state %s)", group, ErrGroupNotEmpty, len(d.Members), d.State)
	}
	starts, ends, err := listOffsets(ctx, a.adm, topic)
	if err != nil {
		return nil, err
	}
	var at kadm.ListedOffsets
	if target.To == "timestamp" {
		if at, err = a.adm.ListOffsetsAfterMilli(ctx, target.Time.UnixMilli(), topic); err != nil {
			return nil, fmt.Errorf("offsets at %s: %w", target.Time.Format(time.RFC3339), err)
		}
	}
	committed, err := a.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	var changes []OffsetChange
	commit := kadm.Offsets{}
	for p, e := range ends[topic] {
		s, _ := starts.Lookup(topic, p)
		c := OffsetChange{Topic: topic, Partition: p, From: -1}
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil {
			c.From = o.At
		}
		switch target.To {
		case "earliest":
			c.To = s.Offset
		case "latest":
			c.To = e.Offset
		case "timestamp":
			o, _ := at.Lookup(topic, p)
			c.To = o.Offset
		case "offset":
			c.To = min(max(target.Offset, s.Offset), e.Offset)
		default:
			return nil, fmt.Errorf("reset target %q: use earliest, latest, timestamp or offset", target.To)
		}
		changes = append(changes, c)
		commit.AddOffset(topic, p, c.To, -1)
	}
	slices.SortFunc(changes, func(x, y OffsetChange) int { return int(x.Partition - y.Partition) })
	if !apply {
		return changes, nil
	}
	resp, err := a.adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("commit new offsets of %s: %w", group, err)
	}
	return changes, nil
}

// Message is one record read by Messages.
type Message struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       []byte            `json:"key"`
	Value     []byte            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

// MessageQuery says which records Messages reads: from Offset of Partition
// (Partition -1: every partition), from the first record at or after From,
// or the Newest records of each partition; at most Limit in all.
type MessageQuery struct {
	Topic     string
	Partition int32 // -1: all
	Offset    int64 // with a partition: the first offset to read
	From      time.Time
	Newest    bool
	Limit     int // 1..1000
	// Wait bounds the read [2s]: what has arrived by then is returned.
	Wait time.Duration
}

// Messages reads records as q says, with a consumer of its own (no group,
// nothing committed), and returns them by partition and offset (newest
// first when q.Newest).
func (a *Admin) Messages(ctx context.Context, q MessageQuery) ([]Message, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		return nil, fmt.Errorf("messages: limit %d: use 1..1000", q.Limit)
	}
	if q.Wait <= 0 {
		q.Wait = 2 * time.Second
	}
	starts, ends, err := listOffsets(ctx, a.adm, q.Topic)
	if err != nil {
		return nil, err
	}
	var at kadm.ListedOffsets
	if !q.From.IsZero() {
		if at, err = a.adm.ListOffsetsAfterMilli(ctx, q.From.UnixMilli(), q.Topic); err != nil {
			return nil, fmt.Errorf("messages: offsets at %s: %w", q.From.Format(time.RFC3339), err)
		}
	}
	parts := map[int32]kgo.Offset{}
	want := map[int32]int64{} // records to read per partition
	for p, e := range ends[q.Topic] {
		if q.Partition >= 0 && p != q.Partition {
			continue
		}
		s, _ := starts.Lookup(q.Topic, p)
		from := s.Offset
		switch {
		case q.Newest:
			from = max(s.Offset, e.Offset-int64(q.Limit))
		case !q.From.IsZero():
			o, _ := at.Lookup(q.Topic, p)
			from = o.Offset
		case q.Partition >= 0:
			from = min(max(q.Offset, s.Offset), e.Offset)
		}
		if from >= e.Offset {
			continue
		}
		parts[p] = kgo.NewOffset().At(from)
		want[p] = e.Offset - from
	}
	if len(parts) == 0 {
		return []Message{}, nil
	}
	opts, err := a.cfg.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{q.Topic: parts}), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, q.Wait)
	defer cancel()
	var out []Message
	per := map[int32]int{}
	budget := q.Limit
	for budget > 0 && rctx.Err() == nil && len(want) > 0 {
		fs := cl.PollRecords(rctx, budget)
		fs.EachRecord(func(r *kgo.Record) {
			if budget <= 0 || want[r.Partition] == 0 {
				return
			}
			if q.Newest && per[r.Partition] >= q.Limit {
				return
			}
			m := Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
				Key: r.Key, Value: r.Value, Headers: map[string]string{}}
			for _, h := range r.Headers {
				m.Headers[h.Key] = string(h.Value)
			}
			out = append(out, m)
			per[r.Partition]++
			want[r.Partition]--
			if want[r.Partition] == 0 {
				delete(want, r.Partition)
			}
			if !q.Newest {
				budget--
			}
		})
		if q.Newest && len(out) >= q.Limit*len(parts) {
			break
		}
	}
	slices.SortFunc(out, func(x, y Message) int {
		if q.Newest {
			if !x.Timestamp.Equal(y.Timestamp) {
				return y.Timestamp.Compare(x.Timestamp)
			}
			return int(y.Offset - x.Offset)
		}
		if x.Partition != y.Partition {
			return int(x.Partition - y.Partition)
		}
		return int(x.Offset - y.Offset)
	})
	if q.Newest && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}
