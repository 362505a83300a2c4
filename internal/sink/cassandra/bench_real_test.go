package cassandra_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinktest"
)

// BenchmarkUpsertReal measures the sink's rows/s on the real node (one
// logged batch a record: its created_users row and its recent_users
// entry), fresh ids every batch, at the sink's default concurrency and at
// 128 writes in flight.
//
//	go test -run '^$' -bench 'UpsertReal|RawCeiling' -benchtime 20x ./internal/sink/cassandra/
func BenchmarkUpsertReal(b *testing.B) {
	for _, c := range []string{"", "concurrency=128"} {
		b.Run("params="+c, func(b *testing.B) {
			s := openReal(b, c)
			sinktest.BenchmarkUpsert(b, s, 5000, true)
		})
	}
}

// BenchmarkRawCeiling is the same driver on the same node writing what
// the sink cannot beat: one prepared single-row INSERT into created_users
// a user (no recent_users entry, no batch, no validation), at several
// concurrencies. Its best rows/s is the ceiling the sink's figure is set
// beside in docs/benchmarks.md.
func BenchmarkRawCeiling(b *testing.B) {
	for _, conc := range []int{32, 128, 512} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			s := openReal(b, "") // creates the keyspace and table
			ks := s.Config().Keyspace
			sess, err := engines.CassandraSession(enginestest.CassandraAddr(b), 10*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Close()
			insert := "INSERT INTO " + ks + ".created_users (id, first_name, last_name, gender, address, post_code, email, username, dob, registered_date, phone, picture, nat, ingested_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
			const batch = 5000
			tmpl := sinktest.Records(0, batch)
			rows := 0
			for b.Loop() {
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, conc)
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1)) - 1
							if i >= batch {
								return
							}
							r := tmpl[i]
							if err := sess.Query(insert, gocql.TimeUUID().String(), r.FirstName, r.LastName, r.Gender, r.Address,
								r.PostCode, r.Email, r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat,
								r.IngestedAt, r.RunID).Exec(); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				select {
				case err := <-errs:
					b.Fatal(err)
				default:
				}
				rows += batch
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkReadsReal measures what `users count | recent | get` and the
// users page call (Count, Recent, Get, Page first/deep/nat, Stats) on a
// real node holding USERSTREAM_BENCH_ROWS users (default 1,000,000; a
// twentieth with nat FR), filled through the sink at 128 writes in flight
// (the fill time is logged).
//
//	go test -run '^$' -bench ReadsReal -benchtime 5x -timeout 60m ./internal/sink/cassandra/
func BenchmarkReadsReal(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("USERSTREAM_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("USERSTREAM_BENCH_ROWS=%q: want a number of at least 100", v)
		}
		rows = n
	}
	s := openReal(b, "concurrency=128&timeout=60s")
	ctx := context.Background()
	start := time.Now()
	const chunk = 5000
	for from := 0; from < rows; from += chunk {
		batch := sinktest.Records(from, min(chunk, rows-from))
		for i := range batch {
			if (from+i)%20 == 0 {
				batch[i].Nat = "FR"
			}
		}
		if err := s.Upsert(ctx, batch); err != nil {
			b.Fatalf("fill at %d: %v", from, err)
		}
	}
	b.Logf("filled %d rows in %v", rows, time.Since(start).Round(time.Millisecond))
	// The user at position rows*9/10 from the newest: Record(i) with
	// i = rows-1-pos has the (i)th ingested_at.
	pos := rows * 9 / 10
	deepRec := sinktest.Record(rows - 1 - pos)
	deep := sink.Cursor{IngestedAt: deepRec.IngestedAt, ID: deepRec.ID}.String()
	sinktest.BenchmarkPage(b, s, rows, deep)
	run := func(name string, f func() error) { sinktest.BenchmarkCalls(b, name, f) }
	run("count", func() error {
		n, err := s.Count(ctx)
		if err == nil && n != int64(rows) {
			err = fmt.Errorf("Count = %d, want %d", n, rows)
		}
		return err
	})
	run("recent10", func() error {
		rs, err := s.Recent(ctx, 10)
		if err == nil && (len(rs) != 10 || rs[0].ID != sinktest.Record(rows-1).ID) {
			err = fmt.Errorf("Recent(10) = %d users, first %v; want 10, newest first", len(rs), rs)
		}
		return err
	})
	want := sinktest.Record(rows / 2)
	run("get", func() error {
		r, err := s.Get(ctx, want.ID)
		if err == nil && r.Email != want.Email {
			err = fmt.Errorf("Get = %s, want %s", r.Email, want.Email)
		}
		return err
	})
}
