package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAdminScan(t *testing.T) {
	_, a, _ := adminFixture(t, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("every record of every partition, once, in offset order", func(t *testing.T) {
		seen := map[string]bool{}
		last := map[int32]int64{0: -1, 1: -1, 2: -1}
		var progressed int
		prog, err := a.Scan(ctx, ScanQuery{Topic: Topic, Partition: -1, ToOffset: -1, Progress: func(ScanProgress) { progressed++ }},
			func(m Message) bool {
				if seen[string(m.Key)] {
					t.Errorf("%s read twice", m.Key)
				}
				seen[string(m.Key)] = true
				if m.Offset <= last[m.Partition] {
					t.Errorf("partition %d: offset %d after %d", m.Partition, m.Offset, last[m.Partition])
				}
				last[m.Partition] = m.Offset
				return true
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 300 || prog.Scanned != 300 || !prog.Done || progressed == 0 {
			t.Fatalf("read %d keys, progress %+v (reported %d times), want 300 scanned and done", len(seen), prog, progressed)
		}
		var sum int64
		for _, p := range prog.Partitions {
			if p.Next != p.End {
				t.Errorf("partition %d stopped at %d of [%d, %d)", p.Partition, p.Next, p.Start, p.End)
			}
			sum += p.End - p.Start
		}
		if sum != 300 || len(prog.Partitions) != 3 {
			t.Errorf("partitions %+v hold %d records, want 300 in 3", prog.Partitions, sum)
		}
	})

	t.Run("an offset range of one partition", func(t *testing.T) {
		var offsets []int64
		prog, err := a.Scan(ctx, ScanQuery{Topic: Topic, Partition: 1, FromOffset: 10, ToOffset: 20}, func(m Message) bool {
			if m.Partition != 1 {
				t.Errorf("partition %d read", m.Partition)
			}
			offsets = append(offsets, m.Offset)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(offsets) != 10 || offsets[0] != 10 || offsets[9] != 19 || prog.Scanned != 10 || !prog.Done {
			t.Fatalf("offsets %v, progress %+v, want 10..19", offsets, prog)
		}
	})

	t.Run("a time range after every record reads nothing", func(t *testing.T) {
		prog, err := a.Scan(ctx, ScanQuery{Topic: Topic, Partition: -1, ToOffset: -1, From: time.Now().Add(time.Hour)},
			func(Message) bool { t.Error("a record read"); return true })
		if err != nil || prog.Scanned != 0 || !prog.Done {
			t.Fatalf("progress %+v, err %v: want nothing scanned, done", prog, err)
		}
	})

	t.Run("a partition the topic lacks is an error", func(t *testing.T) {
		if _, err := a.Scan(ctx, ScanQuery{Topic: Topic, Partition: 7, ToOffset: -1}, func(Message) bool { return true }); err == nil {
			t.Fatal("scan of partition 7 of a 3-partition topic succeeded")
		}
	})

	t.Run("a cancelled scan stops consuming and says so", func(t *testing.T) {
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		var n int
		began := time.Now()
		prog, err := a.Scan(cctx, ScanQuery{Topic: Topic, Partition: -1, ToOffset: -1}, func(Message) bool {
			n++
			if n == 10 {
				stop()
			}
			return true
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if prog.Done || n != 10 || prog.Scanned != 10 {
			t.Fatalf("progress %+v after %d records: want the scan stopped short of 300", prog, n)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Fatalf("the cancelled scan returned after %s", d)
		}
	})

	t.Run("each returning false stops the scan without error", func(t *testing.T) {
		var n int
		prog, err := a.Scan(ctx, ScanQuery{Topic: Topic, Partition: -1, ToOffset: -1}, func(Message) bool { n++; return n < 5 })
		if err != nil || n != 5 || prog.Scanned != 5 || prog.Done {
			t.Fatalf("read %d, progress %+v, err %v: want 5 read and stopped", n, prog, err)
		}
	})

	t.Run("produce says where the record went", func(t *testing.T) {
		p, o, err := a.Produce(ctx, Topic, []byte("produced-key"), []byte(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		ms, err := a.Messages(ctx, MessageQuery{Topic: Topic, Partition: p, Offset: o, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || string(ms[0].Key) != "produced-key" || string(ms[0].Value) != `{"a":1}` {
			t.Fatalf("at %d/%d: %+v", p, o, ms)
		}
	})
}
