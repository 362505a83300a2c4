package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestBrokerDifferences asks the embedded broker and Apache Kafka (4 in
// KRaft mode, and 3.9 on ZooKeeper) the same questions and checks each
// answers as docs/broker.md's table of differences says. A row that
// changes fails here, so the table stays true.
func TestBrokerDifferences(t *testing.T) {
	type answers map[string]string // broker kind -> answer
	probes := []struct {
		name string
		ask  func(ctx context.Context, t *testing.T, cl *kgo.Client) string
		want answers
	}{
		{
			// franz-go never asks for auto-creation unless told to
			// (kgo.AllowAutoTopicCreation); other clients do.
			name: "produce to a missing topic by a client that allows auto-creation",
			ask: func(ctx context.Context, t *testing.T, cl *kgo.Client) string {
				auto, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
					kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(10*time.Second))
				if err != nil {
					return err.Error()
				}
				defer auto.Close()
				if err := auto.ProduceSync(ctx, &kgo.Record{Topic: "no-such-topic", Value: []byte("x")}).FirstErr(); err != nil {
					return errName(err)
				}
				n, err := partitions(ctx, cl, "no-such-topic")
				if err != nil {
					return errName(err)
				}
				return fmt.Sprintf("auto-created, %d partition(s)", n)
			},
			want: answers{enginestest.Embedded: "UNKNOWN_TOPIC_OR_PARTITION", enginestest.Kafka: "auto-created, 1 partition(s)",
				enginestest.KafkaZK: "auto-created, 1 partition(s)"},
		},
		{
			name: "create a topic with replication factor 3 on one node",
			ask: func(ctx context.Context, t *testing.T, cl *kgo.Client) string {
				r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "rf3")
				if err == nil {
					err = r.Err
				}
				if err != nil {
					return errName(err)
				}
				return "created"
			},
			want: answers{enginestest.Embedded: "INVALID_REPLICATION_FACTOR", enginestest.Kafka: "INVALID_REPLICATION_FACTOR",
				enginestest.KafkaZK: "INVALID_REPLICATION_FACTOR"},
		},
		{
			name: "create a topic with the broker's default partitions (-1)",
			ask: func(ctx context.Context, t *testing.T, cl *kgo.Client) string {
				r, err := kadm.NewClient(cl).CreateTopic(ctx, -1, -1, nil, "defaults")
				if err == nil {
					err = r.Err
				}
				if err != nil {
					return errName(err)
				}
				n, err := partitions(ctx, cl, "defaults")
				if err != nil {
					return errName(err)
				}
				return fmt.Sprintf("%d partition(s)", n)
			},
			want: answers{enginestest.Embedded: "3 partition(s)", enginestest.Kafka: "1 partition(s)", enginestest.KafkaZK: "1 partition(s)"},
		},
		{
			name: "a consumer group member with a 3 s session timeout",
			ask: func(ctx context.Context, t *testing.T, cl *kgo.Client) string {
				return joinWithSessionTimeout(ctx, cl, 3000)
			},
			want: answers{enginestest.Embedded: "INVALID_SESSION_TIMEOUT", enginestest.Kafka: "INVALID_SESSION_TIMEOUT",
				enginestest.KafkaZK: "INVALID_SESSION_TIMEOUT"},
		},
		{
			name: "KIP-848 consumer group heartbeat",
			ask: func(ctx context.Context, t *testing.T, cl *kgo.Client) string {
				req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
				req.Group, req.MemberEpoch, req.RebalanceTimeoutMillis = "kip848", 0, 10000
				req.MemberID = "m-1234567890123456789012"
				req.SubscribedTopicNames = []string{"defaults"}
				req.ServerAssignor = kmsg.StringPtr("uniform")
				req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{} // a join sends an empty list, not null
				// A new Kafka's coordinator answers COORDINATOR_LOAD_IN_PROGRESS
				// while it loads __consumer_offsets: asked again, as a client does.
				var answer string
				testwait.For(t, 30*time.Second, "a heartbeat answer that is not a retriable coordinator error", func() (string, bool) {
					resp, err := req.RequestWith(ctx, cl)
					if err == nil {
						err = kerr.ErrorForCode(resp.ErrorCode)
					}
					if err == nil {
						answer = "member of a consumer-protocol group"
						return answer, true
					}
					answer = errName(err)
					return answer, !errors.Is(err, kerr.CoordinatorLoadInProgress) && !errors.Is(err, kerr.CoordinatorNotAvailable) &&
						!errors.Is(err, kerr.NotCoordinator)
				}, testwait.Every(200*time.Millisecond))
				return answer
			},
			want: answers{enginestest.Embedded: "member of a consumer-protocol group",
				enginestest.Kafka: "member of a consumer-protocol group", enginestest.KafkaZK: "UNSUPPORTED_VERSION"},
		},
	}

	kinds := []string{enginestest.Embedded}
	if engines.Available() == nil && !testing.Short() {
		kinds = append(kinds, enginestest.Kafka, enginestest.KafkaZK)
	} else {
		t.Logf("only the embedded broker: %v", engines.Available())
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			var seeds []string
			if kind == enginestest.Embedded {
				e, err := broker.StartEmbedded(t.Context(), "127.0.0.1:0", "", broker.WithoutTopics())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				seeds = []string{e.Addr()}
			} else {
				seeds = enginestest.StartKafka(t, enginestest.KafkaOptions(kind)...).Brokers
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordRetries(2),
				kgo.RecordDeliveryTimeout(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for _, p := range probes {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				got := p.ask(ctx, t, cl)
				cancel()
				t.Logf("| %s | %s | %s |", p.name, kind, got)
				if want := p.want[kind]; got != want {
					t.Errorf("%s on %s: %q, docs/broker.md says %q", p.name, kind, got, want)
				}
			}
		})
	}
}

// joinWithSessionTimeout sends a classic JoinGroup with the given session
// timeout and says whether the coordinator accepted the member.
func joinWithSessionTimeout(ctx context.Context, cl *kgo.Client, ms int32) string {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "session-probe", ms, 10000
	req.ProtocolType = "consumer"
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"defaults"}
	proto.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, proto)
	for range 3 {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return errName(err)
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		if errors.Is(err, kerr.MemberIDRequired) {
			req.MemberID = resp.MemberID // the second step of a join (KIP-394)
			continue
		}
		if err != nil {
			return errName(err)
		}
		return "joined"
	}
	return "no answer"
}

// partitions waits (5 s at most) until topic's metadata lists partitions,
// since a new topic reaches the brokers' metadata a moment after it is
// created, and returns how many, or the topic's last error.
func partitions(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var last error
	for {
		d, err := kadm.NewClient(cl).ListTopics(ctx, topic)
		if err == nil {
			td := d[topic]
			if td.Err == nil && len(td.Partitions) > 0 {
				return len(td.Partitions), nil
			}
			last = td.Err
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = kerr.UnknownTopicOrPartition
			}
			return 0, last
		case <-time.After(100 * time.Millisecond): // paces the poll
		}
	}
}

// errName is a Kafka error's code name, or the error's text.
func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return strings.TrimSpace(err.Error())
}
