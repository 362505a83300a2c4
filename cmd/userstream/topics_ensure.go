package main

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
)

// ensureTopics creates users_created and users_created.dlq when missing
// (with the cluster's default replication factor) and logs what it found
// through the command's logger.
func ensureTopics(ctx context.Context, a *app, adm *kadm.Client, partitions int32) error {
	rep, err := broker.EnsureTopics(ctx, adm, partitions, -1, broker.Topic, broker.DLQTopic)
	broker.LogEnsured(a.log, rep)
	return err
}

// connect builds a Kafka client; settings that cannot work are wrong usage.
func connect(ctx context.Context, kc broker.Config, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := broker.NewClient(ctx, kc, opts...)
	if err != nil {
		return nil, kafkaUsage(err)
	}
	return cl, nil
}
