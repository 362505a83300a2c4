package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The pipeline's topics.
const (
	// Topic carries one message per user, keyed by the user id.
	Topic = "users_created"
	// DLQTopic receives the records the stream cannot decode or validate,
	// with headers saying why and where they came from.
	DLQTopic = "users_created.dlq"
	// DefaultPartitions is the partition count of [Topic] unless told.
	DefaultPartitions int32 = 3
)

// EnsuredTopic says what [EnsureTopics] found or did for one topic.
type EnsuredTopic struct {
	Topic      string `json:"topic"`
	Created    bool   `json:"created"`    // Created is true if this call created the topic.
	Partitions int32  `json:"partitions"` // Partitions is the topic's partition count now.
	// Note is non-empty when the existing topic differs from what was
	// asked (fewer partitions); the topic is left as it is.
	Note string `json:"note,omitempty"`
}

// EnsureTopics creates those of topics that do not exist, with the given
// partition count and replication factor (-1 for either takes the broker's
// default), and leaves existing topics as they are. It never relies on
// topic auto-creation. It returns, for each topic in the order given,
// whether it was created, its partition count and any note: an existing
// topic with fewer partitions than asked is not an error but a note, for
// the caller to log. Errors name the topic and wrap the broker's error
// (errors.Is with kerr values works).
// On error the report holds the topics handled before the failure.
func EnsureTopics(ctx context.Context, adm *kadm.Client, partitions int32, replication int16, topics ...string) ([]EnsuredTopic, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	if partitions == 0 || partitions < -1 {
		return nil, fmt.Errorf("ensure topics: %d partitions: give a positive count, or -1 for the broker default", partitions)
	}
	existing, err := adm.ListTopics(fresh(ctx), topics...)
	if err != nil {
		return nil, fmt.Errorf("ensure topics: list %v: %w", topics, err)
	}
	var missing []string
	for _, t := range topics {
		d, ok := existing[t]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
			continue
		}
		if d.Err != nil {
			return nil, fmt.Errorf("ensure topics: describe %s: %w", t, d.Err)
		}
	}
	var created kadm.CreateTopicResponses
	if len(missing) > 0 {
		created, err = adm.CreateTopics(ctx, partitions, replication, nil, missing...)
		if err != nil {
			return nil, fmt.Errorf("ensure topics: create %v: %w", missing, err)
		}
		// Topics created by someone else between list and create answer
		// TopicAlreadyExists: look them up again.
		var raced []string
		for _, t := range missing {
			if r, ok := created[t]; ok && errors.Is(r.Err, kerr.TopicAlreadyExists) {
				raced = append(raced, t)
			}
		}
		if len(raced) > 0 {
			again, err := adm.ListTopics(fresh(ctx), raced...)
			if err != nil {
				return nil, fmt.Errorf("ensure topics: list %v: %w", raced, err)
			}
			for t, d := range again {
				existing[t] = d
			}
		}
	}

	rep := make([]EnsuredTopic, 0, len(topics))
	for _, t := range topics {
		e := EnsuredTopic{Topic: t}
		if r, ok := created[t]; ok && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			if r.Err != nil {
				msg := ""
				if r.ErrMessage != "" {
					msg = " (" + r.ErrMessage + ")"
				}
				return rep, fmt.Errorf("ensure topics: create %s with %d partitions%s: %w", t, partitions, msg, r.Err)
			}
			e.Created = true
			e.Partitions = r.NumPartitions
			if e.Partitions <= 0 {
				e.Partitions = partitions
			}
			rep = append(rep, e)
			continue
		}
		d, ok := existing[t]
		if !ok {
			return rep, fmt.Errorf("ensure topics: %s neither exists nor could be created: %w", t, cmpErr(d.Err, kerr.UnknownTopicOrPartition))
		}
		e.Partitions = int32(len(d.Partitions))
		if partitions > 0 && e.Partitions < partitions {
			e.Note = fmt.Sprintf("%s exists with %d partitions, fewer than the %d asked; left as it is (add partitions with kafka-topics --alter if you need more)", t, e.Partitions, partitions)
		}
		rep = append(rep, e)
	}
	return rep, nil
}

// fresh makes kadm metadata requests under ctx skip the client's metadata
// cache (kadm caches for 5s, including "unknown topic" answers, which would
// hide a topic created a moment ago). kadm bypasses the cache when asked for
// authorized operations.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// TopicSummary is one line of `userstream topics list`.
type TopicSummary struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Records is the sum over partitions of end minus start offset: the
	// records the topic holds (transaction markers count too).
	Records int64 `json:"records"`
	// EndOffsets is the sum of the partitions' end offsets.
	EndOffsets int64 `json:"end_offsets"`
}

// ListTopics returns every non-internal topic, sorted by name, with its
// partition count and record totals.
func ListTopics(ctx context.Context, adm *kadm.Client) ([]TopicSummary, error) {
	tds, err := adm.ListTopics(fresh(ctx))
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	if err := tds.Error(); err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	names := tds.Names()
	if len(names) == 0 {
		return []TopicSummary{}, nil
	}
	starts, ends, err := listOffsets(ctx, adm, names...)
	if err != nil {
		return nil, err
	}
	out := make([]TopicSummary, 0, len(names))
	for _, t := range names {
		s := TopicSummary{Topic: t, Partitions: len(tds[t].Partitions)}
		for p, e := range ends[t] {
			s.EndOffsets += e.Offset
			if st, ok := starts.Lookup(t, p); ok {
				s.Records += e.Offset - st.Offset
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func listOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (starts, ends kadm.ListedOffsets, err error) {
	list := func(name string, f func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		// A partition whose leader moved, or that a new topic has not
		// given one yet, answers with a retriable error
		// (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE) for a moment:
		// ask again for up to 5 s, as a client would.
		deadline := time.Now().Add(5 * time.Second)
		for {
			offs, err := f(ctx, topics...)
			if err == nil {
				err = offs.Error()
			}
			if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
				if err != nil {
					return nil, fmt.Errorf("list %s offsets of %v: %w", name, topics, err)
				}
				return offs, nil
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("list %s offsets of %v: %w", name, topics, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if starts, err = list("start", adm.ListStartOffsets); err != nil {
		return nil, nil, err
	}
	if ends, err = list("end", adm.ListEndOffsets); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// PartitionDescription is one partition of a described topic.
type PartitionDescription struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"` // the replicas in sync with the leader
	Start     int64   `json:"start_offset"`
	End       int64   `json:"end_offset"`
	// Size is the bytes of the partition's log on its leader, -1 when the
	// broker does not say (DescribeLogDirs refused or unsupported).
	Size int64 `json:"size_bytes"`
}

// GroupLag is one consumer group's position on a topic.
type GroupLag struct {
	Group string `json:"group"`
	// Lag is the sum over partitions of end offset minus committed offset;
	// a partition without a commit counts from its start offset.
	Lag int64 `json:"lag"`
	// Committed maps partition to committed offset, -1 for none.
	Committed map[int32]int64 `json:"committed"`
}

// TopicDescription is what `userstream topics describe TOPIC` prints.
type TopicDescription struct {
	Topic      string                 `json:"topic"`
	ID         string                 `json:"id"`
	Partitions []PartitionDescription `json:"partitions"`
	// Size is the sum of the partitions' sizes, -1 when any is unknown.
	Size int64 `json:"size_bytes"`
	// MinInsyncReplicas is the topic's min.insync.replicas (the in-sync
	// replicas an acks=all write needs), -1 when the broker does not say.
	MinInsyncReplicas int `json:"min_insync_replicas"`
	// Groups are the consumer groups with a commit on this topic, sorted.
	Groups []GroupLag `json:"groups"`
}

// DescribeTopic returns topic's partitions (leader, replicas, start and end
// offsets) and every consumer group that has committed offsets on it, with
// its lag. A topic that does not exist is an error wrapping
// kerr.UnknownTopicOrPartition.
func DescribeTopic(ctx context.Context, adm *kadm.Client, topic string) (TopicDescription, error) {
	tds, err := adm.ListTopics(fresh(ctx), topic)
	if err != nil {
		return TopicDescription{}, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok {
		return TopicDescription{}, fmt.Errorf("describe topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return TopicDescription{}, fmt.Errorf("describe topic %s: %w", topic, td.Err)
	}
	starts, ends, err := listOffsets(ctx, adm, topic)
	if err != nil {
		return TopicDescription{}, err
	}
	desc := TopicDescription{Topic: topic, ID: td.ID.String(), Partitions: []PartitionDescription{}, Groups: []GroupLag{}}
	for _, p := range td.Partitions.Sorted() {
		pd := PartitionDescription{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR, Start: -1, End: -1, Size: -1}
		if o, ok := starts.Lookup(topic, p.Partition); ok {
			pd.Start = o.Offset
		}
		if o, ok := ends.Lookup(topic, p.Partition); ok {
			pd.End = o.Offset
		}
		desc.Partitions = append(desc.Partitions, pd)
	}
	desc.Size = partitionSizes(ctx, adm, topic, td, desc.Partitions)
	desc.MinInsyncReplicas = minInsync(ctx, adm, topic)

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return TopicDescription{}, fmt.Errorf("describe topic %s: list groups: %w", topic, err)
	}
	groups := listed.Groups()
	if len(groups) == 0 {
		return desc, nil
	}
	fetched := adm.FetchManyOffsets(ctx, groups...)
	for _, g := range groups {
		r, ok := fetched[g]
		if !ok || r.Err != nil || len(r.Fetched[topic]) == 0 {
			continue
		}
		desc.Groups = append(desc.Groups, groupLag(g, topic, desc.Partitions, r.Fetched))
	}
	slices.SortFunc(desc.Groups, func(a, b GroupLag) int { return strings.Compare(a.Group, b.Group) })
	return desc, nil
}

// minInsync reads the topic's min.insync.replicas; -1 when the broker does
// not say (an error here leaves it unknown rather than failing the call).
func minInsync(ctx context.Context, adm *kadm.Client, topic string) int {
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return -1
	}
	r, err := rc.On(topic, nil)
	if err != nil || r.Err != nil {
		return -1
	}
	for _, c := range r.Configs {
		if c.Key == "min.insync.replicas" && c.Value != nil {
			if n, err := strconv.Atoi(*c.Value); err == nil {
				return n
			}
		}
	}
	return -1
}

// partitionSizes fills each partition's Size from its leader's log dirs and
// returns the total, -1 if any is unknown. Sizes are extra: an error (an
// old broker, an ACL) leaves them unknown rather than failing the call.
func partitionSizes(ctx context.Context, adm *kadm.Client, topic string, td kadm.TopicDetail, parts []PartitionDescription) int64 {
	set := kadm.TopicsSet{topic: {}}
	for _, p := range parts {
		set[topic][p.Partition] = struct{}{}
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return -1
	}
	total := int64(0)
	for i, p := range parts {
		leader, ok := td.Partitions[p.Partition]
		if !ok {
			total = -1
			continue
		}
		d, ok := dirs[leader.Leader].LookupPartition(topic, p.Partition)
		if !ok {
			total = -1
			continue
		}
		parts[i].Size = d.Size
		if total >= 0 {
			total += d.Size
		}
	}
	return total
}

// groupLag computes a group's lag over the partitions parts of topic from
// its fetched commits.
func groupLag(group, topic string, parts []PartitionDescription, commits kadm.OffsetResponses) GroupLag {
	gl := GroupLag{Group: group, Committed: make(map[int32]int64, len(parts))}
	for _, p := range parts {
		from := p.Start
		gl.Committed[p.Partition] = -1
		if c, ok := commits.Lookup(topic, p.Partition); ok && c.Err == nil && c.At >= 0 {
			gl.Committed[p.Partition] = c.At
			from = c.At
		}
		if p.End > from && from >= 0 {
			gl.Lag += p.End - from
		}
	}
	return gl
}

// Lag returns how many records of topic group has not committed yet: the
// sum over partitions of end offset minus committed offset, where a
// partition without a commit counts from its start offset (a new group
// starts from the earliest offset). A group that does not exist has the
// whole topic as lag. A topic that does not exist is an error wrapping
// kerr.UnknownTopicOrPartition.
func Lag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	gl, err := GroupOffsets(ctx, adm, group, topic)
	return gl.Lag, err
}

// GroupOffsets returns group's committed offsets on topic, partition by
// partition (-1 where it has none), and its lag as [Lag] computes it.
func GroupOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (GroupLag, error) {
	commits, err := adm.FetchOffsetsForTopics(fresh(ctx), group, topic)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// Some brokers (kfake) answer so for a group that never
		// committed; Kafka answers with no offsets. Both mean: no commits.
		commits, err = nil, nil
	}
	if err != nil {
		return GroupLag{}, fmt.Errorf("lag of group %s on %s: %w", group, topic, err)
	}
	starts, ends, err := listOffsets(ctx, adm, topic)
	if err != nil {
		return GroupLag{}, fmt.Errorf("lag of group %s on %s: %w", group, topic, err)
	}
	var parts []PartitionDescription
	for p, e := range ends[topic] {
		pd := PartitionDescription{Partition: p, End: e.Offset}
		if s, ok := starts.Lookup(topic, p); ok {
			pd.Start = s.Offset
		}
		parts = append(parts, pd)
	}
	return groupLag(group, topic, parts, commits), nil
}

// AdoptOffsets commits group from's offsets on topic to group to, when to
// has none there, so a consumer taking over from another goes on where it
// stopped; adopted is how many partitions' offsets it committed (0 when to
// had offsets or from had none). to must have no live members.
func AdoptOffsets(ctx context.Context, adm *kadm.Client, from, to, topic string) (adopted int, err error) {
	have, err := GroupOffsets(ctx, adm, to, topic)
	if err != nil {
		return 0, err
	}
	old, err := GroupOffsets(ctx, adm, from, topic)
	if err != nil {
		return 0, err
	}
	for _, c := range have.Committed {
		if c >= 0 {
			return 0, nil
		}
	}
	var os kadm.Offsets
	for p, c := range old.Committed {
		if c >= 0 {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: c, LeaderEpoch: -1})
			adopted++
		}
	}
	if adopted == 0 {
		return 0, nil
	}
	if err := adm.CommitAllOffsets(ctx, to, os); err != nil {
		return 0, fmt.Errorf("commit group %s's offsets to group %s: %w", from, to, err)
	}
	return adopted, nil
}

// LogEnsured logs an EnsureTopics report: a created topic at info level, a
// note (an existing topic that differs from what was asked) as a warning.
func LogEnsured(log *slog.Logger, rep []EnsuredTopic) {
	for _, r := range rep {
		switch {
		case r.Note != "":
			log.Warn("topic differs from what was asked", "topic", r.Topic, "note", r.Note)
		case r.Created:
			log.Info("topic created", "topic", r.Topic, "partitions", r.Partitions)
		}
	}
}
