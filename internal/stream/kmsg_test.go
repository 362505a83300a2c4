package stream_test

import "github.com/twmb/franz-go/pkg/kmsg"

func kmsgOffsetFetch(group, topic string) *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	t := kmsg.NewOffsetFetchRequestTopic()
	t.Topic = topic
	t.Partitions = []int32{0, 1, 2}
	req.Topics = append(req.Topics, t)
	return req
}
