package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ScanQuery says which records Scan reads: of Partition (-1: every
// partition), the offsets FromOffset to ToOffset of each (ToOffset -1: to
// the end) and, when set, only those written at or after From and before
// To. The end of each partition is its end offset when the scan starts:
// records written during the scan are not read.
type ScanQuery struct {
	Topic      string
	Partition  int32 // -1: all
	FromOffset int64 // below a partition's start: its start
	ToOffset   int64 // exclusive; -1: the end
	From, To   time.Time
	// Progress, when set, is called with the scan's position every
	// ProgressEvery [250ms] while records come, and once at the end, from
	// the goroutine that called Scan.
	Progress      func(ScanProgress)
	ProgressEvery time.Duration
}

// ScanPosition is one partition of a scan: the offsets it reads, [Start,
// End), and the next one to read (End once read).
type ScanPosition struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
	Next      int64 `json:"next"`
}

// ScanProgress is how far a scan got.
type ScanProgress struct {
	Scanned    int64          `json:"scanned"`
	Partitions []ScanPosition `json:"partitions"`
	Elapsed    time.Duration  `json:"elapsed_ns"`
	// Done says every partition was read to its end.
	Done bool `json:"done"`
}

// Scan reads the records q names with a consumer of its own (no group,
// nothing committed), the partitions fetched concurrently, and calls each
// for every record in offset order within its partition. It stops when
// every partition is read, when each returns false, or when ctx ends (its
// error is then returned with the progress made). Partitions with nothing
// in range are not read at all.
func (a *Admin) Scan(ctx context.Context, q ScanQuery, each func(Message) bool) (ScanProgress, error) {
	began := time.Now()
	if q.ProgressEvery <= 0 {
		q.ProgressEvery = 250 * time.Millisecond
	}
	pos, err := a.scanRange(ctx, q)
	if err != nil {
		return ScanProgress{Partitions: []ScanPosition{}}, err
	}
	prog := ScanProgress{Partitions: make([]ScanPosition, 0, len(pos))}
	byPart := map[int32]int{}
	parts := map[int32]kgo.Offset{}
	for _, p := range pos {
		byPart[p.Partition] = len(prog.Partitions)
		prog.Partitions = append(prog.Partitions, p)
		if p.Next < p.End {
			parts[p.Partition] = kgo.NewOffset().At(p.Next)
		}
	}
	left := len(parts)
	report := func() ScanProgress {
		prog.Elapsed = time.Since(began)
		prog.Done = left == 0
		out := prog
		out.Partitions = slices.Clone(prog.Partitions)
		if q.Progress != nil {
			q.Progress(out)
		}
		return out
	}
	if left == 0 {
		return report(), nil
	}
	opts, err := a.cfg.Opts()
	if err != nil {
		return report(), err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{q.Topic: parts}),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(8<<20))...)
	if err != nil {
		return report(), err
	}
	defer cl.Close()
	next := time.Now().Add(q.ProgressEvery)
	stopped := false
	for left > 0 && !stopped {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, fe := range fs.Errors() {
			if fe.Err != ctx.Err() {
				return report(), fmt.Errorf("scan %s partition %d: %w", q.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachPartition(func(ft kgo.FetchTopicPartition) {
			i, ok := byPart[ft.Partition]
			if !ok || stopped {
				return
			}
			p := &prog.Partitions[i]
			for _, r := range ft.Records {
				if p.Next >= p.End || r.Offset >= p.End || ctx.Err() != nil {
					break
				}
				if r.Offset < p.Next { // a record fetched again
					continue
				}
				m := Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
					Key: r.Key, Value: r.Value, Headers: make(map[string]string, len(r.Headers))}
				for _, h := range r.Headers {
					m.Headers[h.Key] = string(h.Value)
				}
				prog.Scanned++
				p.Next = r.Offset + 1
				if !each(m) {
					stopped = true
					break
				}
			}
			// Compacted or aborted records leave gaps: the fetch's high
			// watermark says the partition has nothing more before End.
			if p.Next < p.End && ft.HighWatermark <= p.Next && ctx.Err() == nil {
				p.Next = p.End
			}
			if p.Next >= p.End {
				p.Next = p.End
				if _, reading := parts[p.Partition]; reading {
					delete(parts, p.Partition)
					cl.PauseFetchPartitions(map[string][]int32{q.Topic: {p.Partition}})
					left--
				}
			}
		})
		if time.Now().After(next) {
			next = time.Now().Add(q.ProgressEvery)
			report()
		}
	}
	final := report()
	if err := ctx.Err(); err != nil && !stopped && left > 0 {
		return final, fmt.Errorf("scan %s: %w", q.Topic, err)
	}
	return final, nil
}

// scanRange is each partition's [start, end) of q, with Next at start.
func (a *Admin) scanRange(ctx context.Context, q ScanQuery) ([]ScanPosition, error) {
	starts, ends, err := listOffsets(ctx, a.adm, q.Topic)
	if err != nil {
		return nil, err
	}
	var from, to kadm.ListedOffsets
	if !q.From.IsZero() {
		if from, err = a.adm.ListOffsetsAfterMilli(ctx, q.From.UnixMilli(), q.Topic); err != nil {
			return nil, fmt.Errorf("scan: offsets at %s: %w", q.From.Format(time.RFC3339), err)
		}
	}
	if !q.To.IsZero() {
		if to, err = a.adm.ListOffsetsAfterMilli(ctx, q.To.UnixMilli(), q.Topic); err != nil {
			return nil, fmt.Errorf("scan: offsets at %s: %w", q.To.Format(time.RFC3339), err)
		}
	}
	var out []ScanPosition
	for p, e := range ends[q.Topic] {
		if q.Partition >= 0 && p != q.Partition {
			continue
		}
		s, _ := starts.Lookup(q.Topic, p)
		start, end := max(s.Offset, q.FromOffset), e.Offset
		if q.ToOffset >= 0 {
			end = min(end, q.ToOffset)
		}
		if o, ok := from.Lookup(q.Topic, p); ok && o.Err == nil && o.Offset >= 0 {
			start = max(start, o.Offset)
		}
		if o, ok := to.Lookup(q.Topic, p); ok && o.Err == nil && o.Offset >= 0 {
			end = min(end, o.Offset)
		}
		end = max(end, start)
		out = append(out, ScanPosition{Partition: p, Start: start, End: end, Next: start})
	}
	if len(out) == 0 && q.Partition >= 0 {
		return nil, fmt.Errorf("scan: %s has no partition %d: %w", q.Topic, q.Partition, kerr.UnknownTopicOrPartition)
	}
	slices.SortFunc(out, func(x, y ScanPosition) int { return int(x.Partition - y.Partition) })
	return out, nil
}

// Produce writes one record to topic (the partition the key hashes to)
// and returns where it was stored.
func (a *Admin) Produce(ctx context.Context, topic string, key, value []byte) (partition int32, offset int64, err error) {
	r, err := a.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).First()
	if err != nil {
		return 0, 0, fmt.Errorf("produce to %s: %w", topic, err)
	}
	return r.Partition, r.Offset, nil
}
